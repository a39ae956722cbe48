//! TSIG keys (RFC 8945) of this node (--tsig-keys): those secondaries
//! sign their transfer requests with, a primary's, and those a roll signs
//! its DS UPDATEs to a parent with. Read from a file of `NAME ALGORITHM SECRET` lines (the secret in
//! base64, as `tsig-keygen` and Knot's `keymgr -t` print it; `#` starts a
//! comment). The file's text is zeroized once read; the keys then live in
//! `ring`'s HMAC keys, which do not zeroize (said in docs/ARCHITECTURE.md).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use domain::tsig::{Algorithm, Key, KeyName};
use zeroize::Zeroizing;

/// The keys this node knows, as `domain`'s TSIG middleware looks them up.
pub type KeyStore = Arc<HashMap<(KeyName, Algorithm), Key>>;

#[derive(Clone, Default)]
pub struct TsigKeys {
    pub store: KeyStore,
}

impl std::fmt::Debug for TsigKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl TsigKeys {
    /// Reads a key file; an error names the line.
    pub fn load(path: &std::path::Path) -> Result<TsigKeys, String> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| format!("TSIG key file {}: {e}", path.display()))?,
        );
        Self::parse(&text).map_err(|e| format!("TSIG key file {}: {e}", path.display()))
    }

    fn parse(text: &str) -> Result<TsigKeys, String> {
        let mut keys = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = |what: &str| format!("line {}: {what}", i + 1);
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, algorithm, secret] = fields[..] else {
                return Err(bad("expected NAME ALGORITHM SECRET"));
            };
            let name = KeyName::from_str(name).map_err(|e| bad(&format!("key name: {e}")))?;
            let algorithm = Algorithm::from_str(algorithm.trim_end_matches('.')).map_err(|_| {
                bad("algorithm is not hmac-sha1, hmac-sha256, hmac-sha384 or hmac-sha512")
            })?;
            let secret = Zeroizing::new(
                domain::utils::base64::decode::<Vec<u8>>(secret)
                    .map_err(|_| bad("the secret is not base64"))?,
            );
            let key = Key::new(algorithm, &secret, name.clone(), None, None)
                .map_err(|e| bad(&format!("{e}")))?;
            if keys.insert((name, algorithm), key).is_some() {
                return Err(bad("the key is given twice"));
            }
        }
        Ok(TsigKeys {
            store: Arc::new(keys),
        })
    }

    /// The key of this name (lower case, trailing dot), whatever its
    /// algorithm.
    pub fn by_name(&self, name: &str) -> Option<Key> {
        self.store
            .iter()
            .find(|((n, _), _)| key_name_text(n) == name)
            .map(|(_, k)| k.clone())
    }

    /// The keys' names, lower case with the trailing dot.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.store.keys().map(|(n, _)| key_name_text(n)).collect();
        names.sort();
        names
    }
}

/// A key name as stored and compared: lower case, trailing dot.
pub fn key_name_text(name: &KeyName) -> String {
    name_text(&name.to_string())
}

/// A key name given as text (with or without the trailing dot) in the
/// form `key_name_text` gives.
pub fn name_text(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.')).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lines_are_read_and_errors_name_the_line() {
        let k = TsigKeys::parse(
            "# transfer keys\nxfr-key hmac-sha256 zlCZbVJPIhobIs1gJNQfrsS3xCxxsR9pMUrGwG8OgG8=\n",
        )
        .unwrap();
        assert_eq!(k.names(), ["xfr-key."]);
        let e = TsigKeys::parse("\nk hmac-md5 AAAA\n").unwrap_err();
        assert!(e.starts_with("line 2: algorithm"), "{e}");
        let e = TsigKeys::parse("k hmac-sha256 !!\n").unwrap_err();
        assert_eq!(e, "line 1: the secret is not base64");
        let e = TsigKeys::parse("k hmac-sha256\n").unwrap_err();
        assert_eq!(e, "line 1: expected NAME ALGORITHM SECRET");
        // The secret never shows in what is printed of the keys.
        assert!(!format!("{k:?}").contains("zlCZ"));
    }
}
