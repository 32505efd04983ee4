//! Value parsers: whole numbers, sizes, durations, booleans, addresses.
//!
//! Every parser either consumes the whole value or fails with a message that says what a valid
//! value looks like. Nothing here ever falls back to "the numeric prefix" the way C's
//! `strtoul`/`atoi` do in uWSGI (`"2G"` as 2 MB, `"abc"` as 0): a value that does not parse
//! fully is an error, never silently another number.

use super::ListenAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The unit a bare number means for a size option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeUnit {
    /// Bare numbers are bytes (`buffer-size`, `limit-post`).
    Bytes,
    /// Bare numbers are MiB, as uWSGI's `reload-on-rss` (`uwsgi_opt_set_megabytes`).
    Mebibytes,
}

/// The unit a bare number means for a duration option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// Bare numbers are seconds, as every uWSGI duration option.
    Seconds,
    /// Bare numbers are milliseconds (molt's own sub-second options).
    Millis,
}

const KIB: u64 = 1024;

/// Parses a whole non-negative number (`u64`): digits only, surrounding blanks allowed.
pub fn parse_u64(v: &str) -> Result<u64, String> {
    let t = v.trim();
    if t.is_empty() {
        return Err("empty value: expected a whole number such as 4".into());
    }
    if t.starts_with('-') {
        return Err(format!("'{v}' is negative: expected a whole number >= 0"));
    }
    if !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "'{v}' is not a whole number: expected digits only, such as 4"
        ));
    }
    t.parse::<u64>()
        .map_err(|_| format!("'{v}' is too large: the maximum is {}", u64::MAX))
}

/// Parses a whole number that must fit in `max` (for fields narrower than `u64`).
pub fn parse_bounded(v: &str, max: u64) -> Result<u64, String> {
    let n = parse_u64(v)?;
    if n > max {
        return Err(format!("'{v}' is too large: the maximum is {max}"));
    }
    Ok(n)
}

/// Splits `"512MiB"` / `"2 G"` / `"30s"` into the number and the (trimmed) suffix.
fn split_number(v: &str) -> Result<(u64, &str), String> {
    let t = v.trim();
    if t.is_empty() {
        return Err("empty value".into());
    }
    if t.starts_with('-') {
        return Err(format!("'{v}' is negative: must be >= 0"));
    }
    let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if end == 0 {
        return Err(format!("'{v}' does not start with a number"));
    }
    let n = t[..end]
        .parse::<u64>()
        .map_err(|_| format!("'{v}' is too large"))?;
    Ok((n, t[end..].trim_start()))
}

/// The multiplier of a size suffix. All suffixes are binary (1024-based), as in uWSGI: molt
/// never uses 1000-based units, so `M`, `MB` and `MiB` mean the same.
fn size_multiplier(suffix: &str, bare: SizeUnit) -> Option<u64> {
    let m = match suffix.to_ascii_lowercase().as_str() {
        "" => match bare {
            SizeUnit::Bytes => 1,
            SizeUnit::Mebibytes => KIB * KIB,
        },
        "b" => 1,
        "k" | "kb" | "kib" => KIB,
        "m" | "mb" | "mib" => KIB * KIB,
        "g" | "gb" | "gib" => KIB * KIB * KIB,
        "t" | "tb" | "tib" => KIB * KIB * KIB * KIB,
        _ => return None,
    };
    Some(m)
}

/// Describes the valid forms of a size for error messages.
pub fn size_forms(bare: SizeUnit) -> &'static str {
    match bare {
        SizeUnit::Bytes => "a size such as 65536, 64k, 512M or 2GiB (bare number = bytes)",
        SizeUnit::Mebibytes => "a size such as 512 (MiB), 512M, 512MiB or 2G (bare number = MiB)",
    }
}

/// Parses a size into bytes: a whole number with an optional binary suffix.
pub fn parse_size(v: &str, bare: SizeUnit) -> Result<u64, String> {
    let forms = size_forms(bare);
    let (n, suffix) = split_number(v).map_err(|e| format!("{e}: expected {forms}"))?;
    let mult = size_multiplier(suffix, bare)
        .ok_or_else(|| format!("'{v}' has an unknown unit '{suffix}': expected {forms}"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{v}' is too large: expected {forms}"))
}

/// Describes the valid forms of a duration for error messages.
pub fn duration_forms(bare: TimeUnit) -> &'static str {
    match bare {
        TimeUnit::Seconds => "a duration such as 30 (seconds), 30s, 500ms, 5m or 2h",
        TimeUnit::Millis => "a duration such as 500 (milliseconds), 500ms, 2s or 1m",
    }
}

/// Parses a duration: a whole number with an optional `ms`, `s`, `m` or `h` suffix.
pub fn parse_duration(v: &str, bare: TimeUnit) -> Result<Duration, String> {
    let forms = duration_forms(bare);
    let (n, suffix) = split_number(v).map_err(|e| format!("{e}: expected {forms}"))?;
    let millis_per = match (suffix, bare) {
        ("", TimeUnit::Seconds) | ("s", _) => 1000,
        ("", TimeUnit::Millis) | ("ms", _) => 1,
        ("m", _) | ("min", _) => 60_000,
        ("h", _) => 3_600_000,
        _ => {
            return Err(format!(
                "'{v}' has an unknown unit '{suffix}': expected {forms}"
            ))
        }
    };
    n.checked_mul(millis_per)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("'{v}' is too large: expected {forms}"))
}

/// Parses a boolean as uWSGI spells them; an empty value (a bare key or `--flag`) is true.
///
/// uWSGI treats every unknown word as true (`master = maybe`); molt rejects it instead.
pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "'{v}' is not a boolean: use true/1/yes/on or false/0/no/off (a bare key means true)"
        )),
    }
}

/// Parses a non-empty path.
pub fn parse_path(v: &str) -> Result<PathBuf, String> {
    if v.trim().is_empty() {
        return Err("empty value: expected a path".into());
    }
    Ok(PathBuf::from(v))
}

/// Parses `HOST:PORT`, `:PORT`, `[IPv6]:PORT` or a unix socket path (anything containing `/`).
pub fn parse_addr(v: &str) -> Result<ListenAddr, String> {
    let v = v.trim();
    if v.contains('/') {
        return Ok(ListenAddr::Unix(PathBuf::from(v)));
    }
    let forms = "expected HOST:PORT, :PORT, [IPv6]:PORT or a unix socket path";
    let (host, port) = v
        .rsplit_once(':')
        .ok_or_else(|| format!("'{v}' has no port: {forms}"))?;
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("'{port}' in '{v}' is not a port number (0-65535): {forms}"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok(ListenAddr::Tcp { host, port })
}

/// Parses `KEY=VALUE` for the `env` option.
pub fn parse_key_value(v: &str) -> Result<(String, String), String> {
    let (k, val) = v
        .split_once('=')
        .ok_or_else(|| format!("'{v}' has no '=': expected KEY=VALUE"))?;
    if k.is_empty() || k.contains('\0') || val.contains('\0') {
        return Err(format!(
            "'{v}' is not a valid KEY=VALUE (empty key or NUL byte)"
        ));
    }
    Ok((k.to_string(), val.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_fully_or_fail() {
        let b = SizeUnit::Bytes;
        assert_eq!(parse_size("4096", b), Ok(4096));
        assert_eq!(parse_size("64k", b), Ok(65536));
        assert_eq!(parse_size("2G", b), Ok(2 << 30));
        assert_eq!(parse_size("2 GiB", b), Ok(2 << 30));
        assert_eq!(parse_size("512MiB", b), Ok(512 << 20));
        assert_eq!(parse_size("512", SizeUnit::Mebibytes), Ok(512 << 20));
        assert_eq!(parse_size("2G", SizeUnit::Mebibytes), Ok(2 << 30));
        for bad in [
            "-1MB",
            "1e3",
            "abc",
            "",
            "18446744073709551616",
            "10s",
            "1.5G",
            "20000000T",
        ] {
            let e = parse_size(bad, b).expect_err(bad);
            assert!(e.contains("expected a size"), "{bad}: {e}");
        }
    }

    #[test]
    fn distinct_errors_for_distinct_mistakes() {
        let b = SizeUnit::Bytes;
        assert!(parse_size("-1MB", b).unwrap_err().contains("negative"));
        assert!(parse_size("10s", b)
            .unwrap_err()
            .contains("unknown unit 's'"));
        assert!(parse_size("18446744073709551616", b)
            .unwrap_err()
            .contains("too large"));
        assert!(parse_size("", b).unwrap_err().contains("empty"));
        assert!(parse_size("abc", b)
            .unwrap_err()
            .contains("does not start with a number"));
    }

    #[test]
    fn durations() {
        let s = TimeUnit::Seconds;
        assert_eq!(parse_duration("30", s), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s", s), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms", s), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m", s), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h", s), Ok(Duration::from_secs(7200)));
        assert_eq!(
            parse_duration("250", TimeUnit::Millis),
            Ok(Duration::from_millis(250))
        );
        for bad in ["-1", "1.5s", "10 parsecs", "", "x", "99999999999999999999"] {
            assert!(parse_duration(bad, s).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_and_bools() {
        assert_eq!(parse_u64(" 4 "), Ok(4));
        assert!(parse_u64("-1").unwrap_err().contains("negative"));
        assert!(parse_u64("4x").is_err());
        assert!(parse_u64("").is_err());
        assert!(parse_bounded("70000", 65535).is_err());
        for t in ["", "true", "True", "1", "yes", "on"] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["false", "False", "0", "no", "off"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        assert!(parse_bool("maybe").is_err());
    }

    #[test]
    fn addresses_and_env() {
        assert_eq!(
            parse_addr(":8000"),
            Ok(ListenAddr::Tcp {
                host: String::new(),
                port: 8000
            })
        );
        assert_eq!(
            parse_addr("[::1]:80"),
            Ok(ListenAddr::Tcp {
                host: "::1".into(),
                port: 80
            })
        );
        assert!(matches!(parse_addr("/tmp/s.sock"), Ok(ListenAddr::Unix(_))));
        assert!(parse_addr("localhost").is_err());
        assert!(parse_addr(":99999").is_err());
        assert_eq!(parse_key_value("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(parse_key_value("A").is_err());
        assert!(parse_key_value("=x").is_err());
    }
}
