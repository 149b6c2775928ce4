//! A string that never shows itself in logs.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret string (a password, key or token) whose `Debug` and `Display` print
/// `[redacted]`.
///
/// The value is reachable only through [`Secret::expose`], so every place that
/// hands it to the outside world is easy to find. It serializes as the plain value:
/// serialization is for handing the job to a backend or to durable state, never for
/// logging.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value itself, for the one call that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert!(!format!("{secret:?}").contains("hunter2"));
        let nested = Some(vec![secret.clone()]);
        assert!(!format!("{nested:#?}").contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2-very-secret");
    }
}
