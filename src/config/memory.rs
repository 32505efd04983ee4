//! Pool memory thresholds as written: `512M`, `70%`, `85% for 2 cycles` (monit's words).

use std::fmt;

use super::units::{parse_size, parse_u64, SizeUnit};

/// How big a threshold is: absolute, or a share of the memory molt may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// Bytes.
    Bytes(u64),
    /// Tenths of a percent (`72.5%` = 725) of the cgroup's memory limit, else of MemTotal.
    PerMille(u32),
}

impl Amount {
    /// The threshold in bytes, given the memory molt may use (`capacity`).
    pub fn bytes_of(self, capacity: u64) -> u64 {
        match self {
            Amount::Bytes(b) => b,
            Amount::PerMille(pm) => (capacity as u128 * u128::from(pm) / 1000) as u64,
        }
    }
}

/// A pool threshold: the amount, and how many consecutive checks it must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryThreshold {
    pub amount: Amount,
    pub cycles: u32,
}

impl fmt::Display for MemoryThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.amount {
            Amount::Bytes(b) => write!(f, "{:.1} MB", b as f64 / 1048576.0)?,
            Amount::PerMille(pm) => write!(f, "{}.{}%", pm / 10, pm % 10)?,
        }
        if self.cycles > 1 {
            write!(f, " for {} cycles", self.cycles)?;
        }
        Ok(())
    }
}

const FORMS: &str =
    "a size (bare number = MiB, or 512M, 2G) or a percentage (70%), optionally followed by 'for N cycles'";

/// Parses `AMOUNT [for N cycles]`; `0` (or `off`) disables the rule.
pub fn parse_threshold(v: &str) -> Result<Option<MemoryThreshold>, String> {
    let text = v.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (amount, cycles) = match text.split_once(" for ") {
        Some((a, rest)) => (a.trim(), parse_cycles(rest, v)?),
        None => (text, 1),
    };
    let amount = parse_amount(amount).map_err(|e| format!("'{v}': {e}; expected {FORMS}"))?;
    Ok(match amount {
        Amount::Bytes(0) | Amount::PerMille(0) => None,
        a => Some(MemoryThreshold { amount: a, cycles }),
    })
}

fn parse_cycles(rest: &str, v: &str) -> Result<u32, String> {
    let mut words = rest.split_whitespace();
    let n = words.next().map(parse_u64).transpose()?;
    let unit = words.next();
    let ok_unit = matches!(unit, Some("cycle" | "cycles" | "check" | "checks"));
    match (n, ok_unit, words.next()) {
        (Some(n @ 1..=1000), true, None) => Ok(n as u32),
        _ => Err(format!(
            "'{v}': after 'for' expected 'N cycles' with N from 1 to 1000"
        )),
    }
}

fn parse_amount(a: &str) -> Result<Amount, String> {
    let Some(pct) = a.strip_suffix('%') else {
        return parse_size(a, SizeUnit::Mebibytes).map(Amount::Bytes);
    };
    let pct = pct.trim();
    let (whole, tenth) = pct.split_once('.').unwrap_or((pct, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(tenth) || tenth.len() > 1 {
        return Err("a percentage takes at most one decimal (72.5%)".into());
    }
    let pm = whole
        .parse::<u32>()
        .ok()
        .and_then(|w| w.checked_mul(10))
        .and_then(|w| w.checked_add(tenth.parse::<u32>().ok()?))
        .filter(|&pm| pm <= 1000)
        .ok_or("a percentage must be between 0% and 100%")?;
    Ok(Amount::PerMille(pm))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(amount: Amount, cycles: u32) -> Option<MemoryThreshold> {
        Some(MemoryThreshold { amount, cycles })
    }

    #[test]
    fn thresholds_parse_in_monit_words() {
        let mb = 1024 * 1024;
        let cases = [
            ("70%", t(Amount::PerMille(700), 1)),
            ("72.5%", t(Amount::PerMille(725), 1)),
            ("85% for 2 cycles", t(Amount::PerMille(850), 2)),
            ("85%  for 1 cycle", t(Amount::PerMille(850), 1)),
            ("512", t(Amount::Bytes(512 * mb), 1)),
            ("2G for 3 checks", t(Amount::Bytes(2048 * mb), 3)),
            ("0", None),
            ("off", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_threshold(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_thresholds_say_what_is_expected() {
        for bad in [
            "101%",
            "7.25%",
            "x%",
            "70% for",
            "70% for 0 cycles",
            "70% for 2 days",
            "-1",
        ] {
            assert!(parse_threshold(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn percentages_resolve_against_the_capacity() {
        let gib = 1 << 30;
        assert_eq!(Amount::PerMille(700).bytes_of(10 * gib), 7 * gib);
        assert_eq!(Amount::Bytes(5).bytes_of(10 * gib), 5);
        let shown = t(Amount::PerMille(855), 2).map(|t| t.to_string());
        assert_eq!(shown.as_deref(), Some("85.5% for 2 cycles"));
    }
}
