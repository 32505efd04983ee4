//! Route names for the leak finder: method + path with ids normalised, so `/items/123`
//! and `/items/456` count as one route (`GET /items/:n`). The query string is dropped.

/// Writes the normalised route of `method` and `target` into `out` (cleared first).
/// Segments that are all digits become `:n`; UUIDs become `:uuid`; hex strings of 8+
/// characters with at least one digit become `:hex`.
pub fn normalise(method: &str, target: &str, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    let path = target.split(['?', '#']).next().unwrap_or("/");
    if path.is_empty() {
        out.push(b'/');
        return;
    }
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(token(seg).unwrap_or(seg).as_bytes());
    }
}

fn token(seg: &str) -> Option<&'static str> {
    let b = seg.as_bytes();
    if b.is_empty() {
        return None;
    }
    if b.iter().all(u8::is_ascii_digit) {
        return Some(":n");
    }
    if is_uuid(b) {
        return Some(":uuid");
    }
    if b.len() >= 8 && b.iter().all(u8::is_ascii_hexdigit) && b.iter().any(u8::is_ascii_digit) {
        return Some(":hex");
    }
    None
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// FNV-1a: a stable, cheap hash to claim a route's cell in the scoreboard.
pub fn hash(name: &[u8]) -> u64 {
    name.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(m: &str, t: &str) -> String {
        let mut out = Vec::new();
        normalise(m, t, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn ids_are_normalised() {
        assert_eq!(n("GET", "/items/123"), "GET /items/:n");
        assert_eq!(n("GET", "/leak?kb=1"), n("GET", "/leak?kb=2"));
        assert_eq!(n("GET", "/"), "GET /");
        assert_eq!(
            n("PUT", "/u/123e4567-e89b-12d3-a456-426614174000/x"),
            "PUT /u/:uuid/x"
        );
        assert_eq!(n("GET", "/blob/deadbeef01"), "GET /blob/:hex");
        assert_eq!(n("GET", "/blob/deadbeef"), "GET /blob/deadbeef");
        assert_eq!(n("GET", "/a//b/"), "GET /a//b/");
        assert_ne!(hash(b"GET /"), hash(b"GET /leak"));
    }
}
