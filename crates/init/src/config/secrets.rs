//! Secrets outside development: when the app or the execution service listens
//! beyond loopback, the documented default secret is refused and every shared
//! secret must be at least [`MIN_EXPOSED_SECRET_LEN`] characters.

use std::net::IpAddr;

use super::{Config, ConfigError};

/// The secret the defaults and the documentation use for development.
pub const DEV_SECRET: &str = "vnext-dev-secret";

/// The shortest secret accepted on a non-loopback listener (32 random bytes
/// written as text are longer than this).
pub const MIN_EXPOSED_SECRET_LEN: usize = 32;

/// Whether `listen` (`host:port`) is a loopback address. A host name other
/// than `localhost` counts as not loopback: what it resolves to can change.
pub fn is_loopback_listen(listen: &str) -> bool {
    let host = match listen.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => listen,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Config {
    /// Refuses the default and short secrets when `app.listen` or
    /// `execution.listen` is not a loopback address. Services call it after
    /// applying their `--listen` override.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the secret and the listener.
    pub fn check_exposed_secrets(&self) -> Result<(), ConfigError> {
        let exposed =
            [("app.listen", &self.app.listen), ("app.internal_listen", &self.app.internal_listen), ("execution.listen", &self.execution.listen)]
            .into_iter()
            .find(|(_, listen)| !is_loopback_listen(listen));
        let Some((field, listen)) = exposed else { return Ok(()) };
        for (name, secret) in [("execution.shared_secret", &self.execution.shared_secret), ("database.role_secret", &self.database.role_secret)] {
            if secret == DEV_SECRET {
                return Err(ConfigError::Invalid(format!(
                    "{name} is the documented development secret, refused because {field} = {listen} is not a loopback address; set it (e.g. VNEXT_{}) to at least {MIN_EXPOSED_SECRET_LEN} random characters (openssl rand -hex 32)",
                    name.replace('.', "__").to_uppercase()
                )));
            }
            if secret.chars().count() < MIN_EXPOSED_SECRET_LEN {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be at least {MIN_EXPOSED_SECRET_LEN} characters when {field} = {listen} is not a loopback address"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_listeners() {
        for l in ["127.0.0.1:4201", "127.0.0.1:0", "[::1]:4201", "localhost:4201", "127.1.2.3:80"] {
            assert!(is_loopback_listen(l), "{l}");
        }
        for l in ["0.0.0.0:4201", "[::]:4201", "10.0.0.1:80", "example.internal:80", "192.168.1.2:0"] {
            assert!(!is_loopback_listen(l), "{l}");
        }
    }

    #[test]
    fn default_and_short_secrets_are_refused_off_loopback() {
        let mut config = Config::default();
        assert!(config.check_exposed_secrets().is_ok(), "loopback development keeps the defaults");
        config.app.listen = "0.0.0.0:4201".into();
        let e = config.check_exposed_secrets().unwrap_err().to_string();
        assert!(e.contains("execution.shared_secret") && e.contains("development secret"), "{e}");
        config.execution.shared_secret = "x".repeat(32);
        let e = config.check_exposed_secrets().unwrap_err().to_string();
        assert!(e.contains("database.role_secret"), "{e}");
        config.database.role_secret = "short-but-not-default".into();
        let e = config.check_exposed_secrets().unwrap_err().to_string();
        assert!(e.contains("at least 32"), "{e}");
        config.database.role_secret = "y".repeat(32);
        assert!(config.check_exposed_secrets().is_ok());
        config.app.listen = "127.0.0.1:4201".into();
        config.execution.listen = "0.0.0.0:4202".into();
        config.execution.shared_secret = DEV_SECRET.into();
        assert!(config.check_exposed_secrets().unwrap_err().to_string().contains("execution.listen"));
    }
}
