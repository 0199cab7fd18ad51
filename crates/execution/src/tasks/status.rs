//! `acceptedStatusCodes` patterns: `"404"`, `"4xx"`, `"40x"`.
//!
//! A pattern is three characters, each a digit or `x` (any digit). A response
//! whose status matches one is a success even outside 2xx, so the output mapping
//! sees it and no error boundary runs.

/// A parsed status pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusPattern([Option<u8>; 3]);

impl StatusPattern {
    /// Parses `"404"`, `"4xx"`, `"40X"`; surrounding spaces are ignored.
    ///
    /// # Errors
    /// A message naming the pattern when it is not three digits-or-`x`.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let p = pattern.trim().as_bytes();
        let bad = || format!("`{pattern}` is not a status pattern (expected three digits or `x`, e.g. \"404\", \"4xx\", \"40x\")");
        if p.len() != 3 || !matches!(p[0], b'1'..=b'5' | b'x' | b'X') {
            return Err(bad());
        }
        let mut out = [None; 3];
        for (slot, b) in out.iter_mut().zip(p) {
            *slot = match b {
                b'0'..=b'9' => Some(b - b'0'),
                b'x' | b'X' => None,
                _ => return Err(bad()),
            };
        }
        Ok(Self(out))
    }

    pub fn matches(self, status: u16) -> bool {
        if !(100..=999).contains(&status) {
            return false;
        }
        let digits = [(status / 100) as u8, (status / 10 % 10) as u8, (status % 10) as u8];
        self.0.iter().zip(digits).all(|(p, d)| p.is_none_or(|p| p == d))
    }
}

/// Parses a list of patterns.
///
/// # Errors
/// The first invalid pattern's message.
pub fn parse_all(patterns: &[String]) -> Result<Vec<StatusPattern>, String> {
    patterns.iter().map(|p| StatusPattern::parse(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_class_and_decade() {
        let exact = StatusPattern::parse("404").unwrap();
        assert!(exact.matches(404) && !exact.matches(405));
        let class = StatusPattern::parse("4xx").unwrap();
        assert!(class.matches(400) && class.matches(499) && !class.matches(500));
        let decade = StatusPattern::parse("40X").unwrap();
        assert!(decade.matches(409) && !decade.matches(410));
    }

    #[test]
    fn rejects_malformed() {
        for p in ["", "4", "4xxx", "abc", "4-4", "999", "0xx"] {
            assert!(StatusPattern::parse(p).is_err(), "{p}");
        }
    }
}
