//! Dropping privileges in a worker, in the only safe order: supplementary groups, then
//! the gid, then the uid, then a check that it all holds and cannot be undone
//! (CERT POS36-C). The master keeps its privileges to bind and reopen logs.

use std::ffi::CString;
use std::io;

use nix::unistd::{
    getegid, geteuid, getgid, getgroups, getuid, initgroups, setgid, setgroups, setuid, Gid, Uid,
};

use crate::config::{GroupId, UserId};

/// Switches to `uid`/`gid` (either may be absent). No-op when both are absent.
pub fn drop_to(uid: Option<&UserId>, gid: Option<&GroupId>) -> io::Result<()> {
    if uid.is_none() && gid.is_none() {
        return Ok(());
    }
    let target_gid = gid
        .map(|g| g.id)
        .or_else(|| uid.and_then(|u| u.primary_gid));
    let gid_t = target_gid.map(Gid::from_raw);
    match (uid.and_then(|u| u.name.as_deref()), gid_t) {
        (Some(name), Some(g)) => {
            let name =
                CString::new(name).map_err(|_| io::Error::other("user name contains NUL"))?;
            initgroups(&name, g)?;
        }
        (_, Some(g)) => setgroups(&[g])?,
        (_, None) => {}
    }
    if let Some(g) = gid_t {
        setgid(g)?;
    }
    if let Some(u) = uid {
        setuid(Uid::from_raw(u.id))?;
    }
    verify(uid, gid_t)
}

fn verify(uid: Option<&UserId>, gid: Option<Gid>) -> io::Result<()> {
    if let Some(g) = gid {
        if getgid() != g || getegid() != g {
            return Err(io::Error::other("gid did not change"));
        }
        if getgroups()?
            .iter()
            .any(|x| x.as_raw() == 0 && g.as_raw() != 0)
        {
            return Err(io::Error::other(
                "root's group is still a supplementary group",
            ));
        }
    }
    if let Some(u) = uid {
        if getuid().as_raw() != u.id || geteuid().as_raw() != u.id {
            return Err(io::Error::other("uid did not change"));
        }
        if u.id != 0 && setuid(Uid::from_raw(0)).is_ok() {
            return Err(io::Error::other("setuid(0) still works after the drop"));
        }
    }
    Ok(())
}
