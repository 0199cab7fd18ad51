//! Semantic versions: data-version bumping and reference version selectors.

use crate::model::VersionStrategy;

/// The first data version of an instance.
pub const INITIAL_DATA_VERSION: &str = "1.0.0";

/// Bumps a data version by a strategy. `None` keeps the version. An unparsable
/// version restarts at [`INITIAL_DATA_VERSION`] rather than failing a transition.
pub fn bump(version: &str, strategy: VersionStrategy) -> String {
    let Ok(mut v) = semver::Version::parse(version) else {
        return INITIAL_DATA_VERSION.to_string();
    };
    match strategy {
        VersionStrategy::None => return v.to_string(),
        VersionStrategy::Patch => v.patch += 1,
        VersionStrategy::Minor => {
            v.minor += 1;
            v.patch = 0;
        }
        VersionStrategy::Major => {
            v.major += 1;
            v.minor = 0;
            v.patch = 0;
        }
    }
    v.pre = semver::Prerelease::EMPTY;
    v.build = semver::BuildMetadata::EMPTY;
    v.to_string()
}

/// A reference's version selector: exact `1.2.3`, `latest`, major `1`, or `1.2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSelector {
    Latest,
    Major(u64),
    MajorMinor(u64, u64),
    Exact(semver::Version),
}

impl VersionSelector {
    /// Parses a selector; `None` when it is none of the four forms.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("latest") {
            return Some(VersionSelector::Latest);
        }
        if let Ok(v) = semver::Version::parse(s) {
            return Some(VersionSelector::Exact(v));
        }
        let parts: Vec<&str> = s.split('.').collect();
        match parts.as_slice() {
            [m] => m.parse().ok().map(VersionSelector::Major),
            [m, n] => Some(VersionSelector::MajorMinor(m.parse().ok()?, n.parse().ok()?)),
            _ => None,
        }
    }

    pub fn matches(&self, v: &semver::Version) -> bool {
        match self {
            VersionSelector::Latest => true,
            VersionSelector::Major(m) => v.major == *m,
            VersionSelector::MajorMinor(m, n) => v.major == *m && v.minor == *n,
            // Build metadata does not take part in matching.
            VersionSelector::Exact(e) => {
                e.major == v.major && e.minor == v.minor && e.patch == v.patch && e.pre == v.pre
            }
        }
    }

    /// The highest of `versions` this selector accepts.
    pub fn pick<'a, I>(&self, versions: I) -> Option<&'a str>
    where
        I: IntoIterator<Item = &'a str>,
    {
        versions
            .into_iter()
            .filter_map(|s| semver::Version::parse(s).ok().map(|v| (v, s)))
            .filter(|(v, _)| self.matches(v))
            .max_by(|(a, _), (b, _)| a.cmp_precedence(b))
            .map(|(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bumps_each_strategy() {
        assert_eq!(bump("1.2.3", VersionStrategy::None), "1.2.3");
        assert_eq!(bump("1.2.3", VersionStrategy::Patch), "1.2.4");
        assert_eq!(bump("1.2.3", VersionStrategy::Minor), "1.3.0");
        assert_eq!(bump("1.2.3", VersionStrategy::Major), "2.0.0");
        assert_eq!(bump("garbage", VersionStrategy::Major), "1.0.0");
    }

    #[test]
    fn selectors_pick_the_highest_match() {
        let vs = ["1.0.0", "1.2.0", "1.10.1", "2.0.0"];
        let pick = |s: &str| VersionSelector::parse(s).unwrap().pick(vs.iter().copied());
        assert_eq!(pick("latest"), Some("2.0.0"));
        assert_eq!(pick("1"), Some("1.10.1"));
        assert_eq!(pick("1.2"), Some("1.2.0"));
        assert_eq!(pick("1.0.0"), Some("1.0.0"));
        assert_eq!(pick("3"), None);
        assert!(VersionSelector::parse("1.x.2").is_none());
    }
}
