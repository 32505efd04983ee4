//! Value parsers for the launch options: `worker-exec` commands, signal names and
//! `chown-socket` owners. Pure functions (apart from the passwd/group lookups), so the
//! validation that calls them stays one line per rule.

/// Splits a command into words the way a POSIX shell would for a simple command: single
/// quotes are literal, double quotes allow `\"` and `\\`, a backslash outside quotes
/// escapes the next character. No expansion, no operators: molt execs the words itself,
/// so the exec'd process is the worker (and `LISTEN_PID` names it).
pub fn split_command(cmd: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = cmd.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(x) => cur.push(x),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(x) => cur.push(x),
                    None => return Err("trailing backslash".into()),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    if words.is_empty() {
        return Err("empty command".into());
    }
    if words.iter().any(|w| w.contains('\0')) {
        return Err("the command contains a NUL byte".into());
    }
    Ok(words)
}

/// Parses `TERM`, `SIGTERM`, `sigterm` or `15` into a signal number. SIGKILL and
/// SIGSTOP are refused: a graceful stop must be something the app can act on.
pub fn parse_signal(v: &str) -> Result<i32, String> {
    let t = v.trim();
    let sig = match t.parse::<i32>() {
        Ok(n) => nix::sys::signal::Signal::try_from(n).map_err(|_| format!("{n} is not a signal")),
        Err(_) => {
            let upper = t.to_ascii_uppercase();
            let name = if upper.starts_with("SIG") {
                upper
            } else {
                format!("SIG{upper}")
            };
            name.parse::<nix::sys::signal::Signal>()
                .map_err(|_| format!("'{t}' is not a signal name (e.g. TERM, QUIT, INT)"))
        }
    }?;
    use nix::sys::signal::Signal::{SIGKILL, SIGSTOP};
    if matches!(sig, SIGKILL | SIGSTOP) {
        return Err(format!(
            "{sig} cannot be a graceful stop: the app cannot catch it (molt sends SIGKILL after the mercy anyway)"
        ));
    }
    Ok(sig as i32)
}

/// Resolves `USER[:GROUP]` (names or numeric ids; either part may be empty) to ids.
pub fn parse_owner(v: &str) -> Result<(Option<u32>, Option<u32>), String> {
    let (user, group) = v.split_once(':').unwrap_or((v, ""));
    let uid = match user.trim() {
        "" => None,
        u => Some(lookup_user(u)?),
    };
    let gid = match group.trim() {
        "" => None,
        g => Some(lookup_group(g)?),
    };
    if uid.is_none() && gid.is_none() {
        return Err(format!("'{v}' names neither a user nor a group"));
    }
    Ok((uid, gid))
}

fn lookup_user(u: &str) -> Result<u32, String> {
    if let Ok(id) = u.parse::<u32>() {
        return Ok(id);
    }
    match nix::unistd::User::from_name(u) {
        Ok(Some(user)) => Ok(user.uid.as_raw()),
        _ => Err(format!("no user named '{u}' on this system")),
    }
}

fn lookup_group(g: &str) -> Result<u32, String> {
    if let Ok(id) = g.parse::<u32>() {
        return Ok(id);
    }
    match nix::unistd::Group::from_name(g) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        _ => Err(format!("no group named '{g}' on this system")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell_without_expanding() {
        let w = |s: &str| split_command(s).unwrap();
        assert_eq!(w("node server.js"), ["node", "server.js"]);
        assert_eq!(
            w("  a   'b c'  \"d \\\" e\" f\\ g "),
            ["a", "b c", "d \" e", "f g"]
        );
        assert_eq!(w("echo $HOME ''"), ["echo", "$HOME", ""]);
        assert!(split_command("   ").is_err());
        assert!(split_command("a 'b").is_err());
        assert!(split_command("a \"b").is_err());
    }

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("TERM"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("sigquit"), Ok(libc::SIGQUIT));
        assert_eq!(parse_signal("2"), Ok(libc::SIGINT));
        assert!(parse_signal("KILL").is_err());
        assert!(parse_signal("NOPE").is_err());
    }

    #[test]
    fn owners_by_name_or_id() {
        assert_eq!(parse_owner("0:0"), Ok((Some(0), Some(0))));
        assert_eq!(parse_owner("root"), Ok((Some(0), None)));
        assert_eq!(parse_owner(":0"), Ok((None, Some(0))));
        assert!(parse_owner(":").is_err());
        assert!(parse_owner("no-such-user-molt").is_err());
    }
}
