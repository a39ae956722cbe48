//! RFC 7512 PKCS#11 URIs: choosing a token by URI, label or serial, and
//! naming key objects.

use std::fmt;

use super::error::{HsmError, Result};
use super::identity::TokenIdentity;

/// Which token to use. Every attribute that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenSelector {
    pub label: Option<String>,
    pub serial: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
}

impl TokenSelector {
    pub fn by_label(label: &str) -> Self {
        TokenSelector {
            label: Some(label.to_string()),
            ..Default::default()
        }
    }

    pub fn by_serial(serial: &str) -> Self {
        TokenSelector {
            serial: Some(serial.to_string()),
            ..Default::default()
        }
    }

    /// Parses the token attributes of an RFC 7512 URI
    /// (`pkcs11:token=…;serial=…;manufacturer=…;model=…`). Object attributes
    /// and query attributes are ignored; a PIN in the URI is refused, since
    /// the PIN belongs in a PIN file.
    pub fn from_uri(uri: &str) -> Result<Self> {
        let rest = uri
            .strip_prefix("pkcs11:")
            .ok_or_else(|| HsmError::Other(format!("not a PKCS#11 URI (RFC 7512): {uri}")))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if query.split('&').any(|a| a.starts_with("pin-value=")) {
            return Err(HsmError::Other(
                "the token URI carries pin-value; give the PIN with --pin-file or KEYMASTER_PIN"
                    .to_string(),
            ));
        }
        let mut sel = TokenSelector::default();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| HsmError::Other(format!("malformed attribute {attr:?} in {uri}")))?;
            let value = percent_decode(value)?;
            match name {
                "token" => sel.label = Some(value),
                "serial" => sel.serial = Some(value),
                "manufacturer" => sel.manufacturer = Some(value),
                "model" => sel.model = Some(value),
                _ => {}
            }
        }
        if sel == TokenSelector::default() {
            return Err(HsmError::Other(format!(
                "the URI {uri} names no token (token=, serial=, manufacturer= or model=)"
            )));
        }
        Ok(sel)
    }

    pub fn matches(&self, t: &TokenIdentity) -> bool {
        fn ok(want: &Option<String>, have: &str) -> bool {
            want.as_deref().is_none_or(|w| w == have)
        }
        ok(&self.label, &t.label)
            && ok(&self.serial, &t.serial)
            && ok(&self.manufacturer, &t.manufacturer)
            && ok(&self.model, &t.model)
    }
}

impl fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(v) = &self.label {
            parts.push(format!("token={}", percent_encode(v.as_bytes())));
        }
        if let Some(v) = &self.serial {
            parts.push(format!("serial={}", percent_encode(v.as_bytes())));
        }
        if let Some(v) = &self.manufacturer {
            parts.push(format!("manufacturer={}", percent_encode(v.as_bytes())));
        }
        if let Some(v) = &self.model {
            parts.push(format!("model={}", percent_encode(v.as_bytes())));
        }
        write!(f, "pkcs11:{}", parts.join(";"))
    }
}

/// The RFC 7512 URI of a private key object in a token.
pub fn key_uri(token: &TokenIdentity, id: &[u8], label: &str) -> String {
    format!(
        "pkcs11:token={};serial={};id={};object={};type=private",
        percent_encode(token.label.as_bytes()),
        percent_encode(token.serial.as_bytes()),
        id.iter().map(|b| format!("%{b:02X}")).collect::<String>(),
        percent_encode(label.as_bytes()),
    )
}

fn percent_encode(v: &[u8]) -> String {
    let mut out = String::new();
    for &b in v {
        // RFC 7512 §2.3 pchar: unreserved characters and a few others stay.
        if b.is_ascii_alphanumeric() || b"-._~:[]@!$'()*+,=&".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(v: &str) -> Result<String> {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = v
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| HsmError::Other(format!("bad percent-escape in {v:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| HsmError::Other(format!("{v:?} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident() -> TokenIdentity {
        TokenIdentity {
            label: "my token".into(),
            serial: "abc123".into(),
            manufacturer: "SoftHSM project".into(),
            model: "SoftHSM v2".into(),
        }
    }

    #[test]
    fn uri_with_escaped_label_selects_the_token() {
        let s = TokenSelector::from_uri("pkcs11:token=my%20token;serial=abc123").unwrap();
        assert!(s.matches(&ident()));
        let other = TokenSelector::from_uri("pkcs11:serial=zzz").unwrap();
        assert!(!other.matches(&ident()));
    }

    #[test]
    fn uri_with_pin_value_is_refused() {
        assert!(TokenSelector::from_uri("pkcs11:token=a?pin-value=1234").is_err());
    }

    #[test]
    fn uri_without_token_attributes_is_refused() {
        assert!(TokenSelector::from_uri("pkcs11:object=x").is_err());
        assert!(TokenSelector::from_uri("token=x").is_err());
    }

    #[test]
    fn key_uri_names_token_serial_id_and_label() {
        let u = key_uri(&ident(), &[0xab, 0x01], "example.com-ksk-1234");
        assert_eq!(
            u,
            "pkcs11:token=my%20token;serial=abc123;id=%AB%01;object=example.com-ksk-1234;type=private"
        );
    }
}
