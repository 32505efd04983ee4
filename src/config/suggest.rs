//! "Did you mean" for misspelt option names.
//!
//! A plain Levenshtein distance over the table's names and aliases is enough for typos like
//! `vaccum` or `procesess`; it is a dozen lines, so no crate is pulled in for it.

use super::table::{normalise, OPTIONS};

/// The closest option name or alias to `typo`, if it is close enough to be a plausible typo.
pub fn did_you_mean(typo: &str) -> Option<&'static str> {
    let typo = normalise(typo).to_ascii_lowercase();
    let limit = (typo.chars().count() / 3).clamp(1, 3);
    OPTIONS
        .iter()
        .flat_map(|o| std::iter::once(o.name).chain(o.aliases.iter().copied()))
        .map(|name| (distance(&typo, name), name))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name)
}

/// Levenshtein edit distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("vaccum"), Some("vacuum"));
        assert_eq!(did_you_mean("procesess"), Some("processes"));
        assert_eq!(
            did_you_mean("max-worker-lifetme"),
            Some("max-worker-lifetime")
        );
        assert_eq!(did_you_mean("workrs"), Some("workers"));
        assert_eq!(did_you_mean("completely-different-thing"), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
