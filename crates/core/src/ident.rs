//! Validated names of things that become database identifiers.
//!
//! A domain becomes a database (`vnext_<domain>`) and a workflow key becomes a
//! schema, so both pass through here before any SQL sees them: `-` maps to `_`,
//! the result must match `^[a-z0-9_]{1,63}$` and must not be a reserved name.
//! Everything past the API edge carries these types, never bare strings.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a name cannot be used as a database identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentError {
    #[error("`{0}` is empty")]
    Empty(String),
    #[error("`{0}` is longer than 63 bytes once mapped to an identifier")]
    TooLong(String),
    #[error("`{0}` may contain only lower-case letters, digits, `-` and `_`")]
    BadCharacter(String),
    #[error("`{0}` is reserved (sys_*, pg_*, public and information_schema are not allowed)")]
    Reserved(String),
}

/// Maps `-` to `_` and checks the result is a safe, unreserved identifier.
///
/// # Errors
/// [`IdentError`] naming the offending input.
pub fn to_identifier(name: &str) -> Result<String, IdentError> {
    if name.is_empty() {
        return Err(IdentError::Empty(name.to_string()));
    }
    let mapped = name.replace('-', "_");
    if !mapped.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(IdentError::BadCharacter(name.to_string()));
    }
    if mapped.len() > 63 {
        return Err(IdentError::TooLong(name.to_string()));
    }
    if mapped.starts_with("sys_")
        || mapped.starts_with("pg_")
        || mapped == "public"
        || mapped == "information_schema"
    {
        return Err(IdentError::Reserved(name.to_string()));
    }
    Ok(mapped)
}

/// Quotes an identifier that has already been validated. Doubling quotes keeps it
/// safe even if a caller forgets; valid identifiers never contain one.
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

macro_rules! name_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name {
            name: String,
            ident: String,
        }

        impl $name {
            /// # Errors
            /// [`IdentError`] when the name cannot be a database identifier.
            pub fn new(name: &str) -> Result<Self, IdentError> {
                Ok(Self { ident: to_identifier(name)?, name: name.to_string() })
            }

            /// The name as users write it (`customer-onboarding`).
            pub fn as_str(&self) -> &str {
                &self.name
            }

            /// The database identifier (`customer_onboarding`), unquoted.
            pub fn ident(&self) -> &str {
                &self.ident
            }

            /// The database identifier, double-quoted for SQL.
            pub fn quoted(&self) -> String {
                quote(&self.ident)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdentError;
            fn try_from(s: String) -> Result<Self, IdentError> {
                Self::new(&s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.name
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.name)
            }
        }
    };
}

name_type!(
    /// A domain: one PostgreSQL database.
    DomainName
);
name_type!(
    /// A workflow key: one PostgreSQL schema inside its domain's database.
    FlowKey
);

/// Domain names that collide with the API's own routes: `/api/v1/admin/…`,
/// `/api/v1/internal/…`, `/api/v1/definitions/…` (the app) and
/// `/api/v1/execution/…` (the execution service) sit where `/api/v1/{domain}/…`
/// does. No domain may be called so.
pub const RESERVED_DOMAINS: [&str; 4] = ["admin", "internal", "definitions", "execution"];

impl DomainName {
    /// Whether the name is one of [`RESERVED_DOMAINS`].
    pub fn is_reserved(&self) -> bool {
        RESERVED_DOMAINS.contains(&self.ident.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_dashes_and_accepts_valid_names() {
        let f = FlowKey::new("customer-onboarding").unwrap();
        assert_eq!(f.ident(), "customer_onboarding");
        assert_eq!(f.quoted(), "\"customer_onboarding\"");
        assert_eq!(f.as_str(), "customer-onboarding");
        assert!(DomainName::new(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn refuses_unsafe_names() {
        for bad in ["", "Upper", "a\"b", "x;drop", "sys_x", "sys-x", "pg_catalog", "public",
            "information_schema", "a b", "é"] {
            assert!(to_identifier(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(matches!(to_identifier(&"a".repeat(64)), Err(IdentError::TooLong(_))));
    }

    #[test]
    fn route_names_are_reserved_domains() {
        for name in RESERVED_DOMAINS {
            assert!(DomainName::new(name).unwrap().is_reserved(), "{name}");
        }
        assert!(!DomainName::new("administration").unwrap().is_reserved());
    }
}
