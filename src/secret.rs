//! Secrets in memory: a PIN or passphrase that is zeroized on drop and never
//! printed.

use std::fmt;
use zeroize::Zeroizing;

/// A secret string (a token PIN). Its `Debug` and `Display` are redacted and
/// its memory is zeroized when dropped.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a string; trailing newlines (from a PIN file) are trimmed.
    pub fn new(mut value: String) -> Self {
        while value.ends_with('\n') || value.ends_with('\r') {
            value.pop();
        }
        Secret(Zeroizing::new(value))
    }

    /// The secret itself; only for handing to the party that checks it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_and_display_never_show_the_value() {
        let s = Secret::new("1234\n".to_string());
        assert_eq!(s.expose(), "1234");
        assert!(!format!("{s:?}").contains("1234"));
        assert!(!format!("{s}").contains("1234"));
    }
}
