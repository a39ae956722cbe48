//! Who may do what. Callers are known by the names in their client
//! certificate (DNS and URI SANs, then the subject CN); an access file maps
//! names to roles, and is re-read on SIGHUP without a restart.
//!
//! | role   | rights                                                        |
//! |--------|---------------------------------------------------------------|
//! | admin  | everything: zones, keys, Key Master transfer and seize, audit |
//! | signer | sign, and read public material, for its listed zones only     |
//! | reader | show, list, DS/DNSKEY, audit; with `zones`, of those only      |
//! | node   | peer calls between keymasterd nodes                           |

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::Deserialize;

use crate::error::AccessError;

/// A role from the access file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Signer,
    Reader,
    Node,
}

/// What an RPC needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Right {
    /// Change zones and keys (admin).
    Manage,
    /// Sign for a zone (signer of that zone, or admin).
    Sign(String),
    /// Read a zone's public material (signer of that zone, reader, admin).
    ReadPublic(String),
    /// Read one zone's settings, keys, role and audit entries (reader of
    /// that zone, or admin).
    ReadZone(String),
    /// Read what concerns no one zone: nodes, the whole audit log (reader
    /// without `zones`, or admin).
    Read,
    /// Read the settings of some zones (any reader, or admin): lists are
    /// then cut down to `AccessControl::readable_zones`.
    ReadSome,
    /// Node-to-node calls (node).
    Peer,
}

impl std::fmt::Display for Right {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Right::Manage => f.write_str("manage zones and keys (role admin)"),
            Right::Sign(z) => write!(f, "sign for {z} (role signer for {z}, or admin)"),
            Right::ReadPublic(z) => {
                write!(
                    f,
                    "read public material of {z} (role signer for {z}, reader or admin)"
                )
            }
            Right::ReadZone(z) => write!(
                f,
                "read the settings and audit log of {z} (role reader for {z}, or admin)"
            ),
            Right::Read => f.write_str(
                "read nodes and the whole audit log (role reader for every zone, or admin)",
            ),
            Right::ReadSome => f.write_str("read zone settings (role reader or admin)"),
            Right::Peer => f.write_str("make node-to-node calls (role node)"),
        }
    }
}

/// One entry of the access file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// A name from the client certificate (SAN or CN).
    pub name: String,
    pub roles: Vec<Role>,
    /// Zones a signer may sign for, or a reader may read (apex names); a
    /// reader without zones reads every zone.
    #[serde(default)]
    pub zones: Vec<String>,
}

/// The access file: `[[grant]]` tables.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessFile {
    #[serde(default)]
    pub grant: Vec<Grant>,
}

/// A caller, as its certificate names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Names from the certificate, SANs first, then the CN.
    pub names: Vec<String>,
    /// Set when the service runs without TLS (development only).
    pub plaintext: bool,
}

impl Caller {
    /// A caller that did not prove who it is, as the audit log names it.
    pub fn unknown() -> Caller {
        Caller {
            names: vec!["unauthenticated".to_string()],
            plaintext: false,
        }
    }

    /// The name to show in logs and the audit log.
    pub fn identity(&self) -> &str {
        if self.plaintext {
            return "plaintext-client";
        }
        self.names.first().map_or("?", |s| s.as_str())
    }
}

fn zone_key(z: &str) -> String {
    let z = z.trim().to_ascii_lowercase();
    if z.ends_with('.') {
        z
    } else {
        format!("{z}.")
    }
}

impl AccessFile {
    pub fn parse(text: &str) -> Result<AccessFile, String> {
        let mut f: AccessFile = toml::from_str(text).map_err(|e| e.to_string())?;
        for g in &mut f.grant {
            if g.roles.contains(&Role::Signer) && g.zones.is_empty() {
                return Err(format!("grant for {:?}: role signer needs zones", g.name));
            }
            if !g.zones.is_empty()
                && g.roles
                    .iter()
                    .any(|r| matches!(r, Role::Admin | Role::Node))
            {
                return Err(format!(
                    "grant for {:?}: zones apply to roles signer and reader only; \
                     give admin and node their own grant",
                    g.name
                ));
            }
            g.zones = g.zones.iter().map(|z| zone_key(z)).collect();
        }
        Ok(f)
    }

    /// Whether the caller holds the right.
    pub fn allows(&self, caller: &Caller, right: &Right) -> bool {
        if caller.plaintext {
            return true;
        }
        self.grant
            .iter()
            .filter(|g| caller.names.iter().any(|n| n.eq_ignore_ascii_case(&g.name)))
            .any(|g| {
                g.roles.iter().any(|role| match (role, right) {
                    (Role::Admin, Right::Peer) => false,
                    (Role::Admin, _) => true,
                    (Role::Reader, Right::Read) => g.zones.is_empty(),
                    (Role::Reader, Right::ReadSome) => true,
                    (Role::Reader, Right::ReadZone(z) | Right::ReadPublic(z)) => {
                        g.zones.is_empty() || g.zones.contains(&zone_key(z))
                    }
                    (Role::Signer, Right::Sign(z) | Right::ReadPublic(z)) => {
                        g.zones.contains(&zone_key(z))
                    }
                    (Role::Node, Right::Peer) => true,
                    _ => false,
                })
            })
    }
}

impl AccessFile {
    /// The zones whose settings the caller may read: None for every zone
    /// (admin, a reader without zones), or the listed ones; refused when
    /// the caller may read none.
    pub fn readable_zones(&self, caller: &Caller) -> Option<Option<Vec<String>>> {
        if caller.plaintext {
            return Some(None);
        }
        let mut zones: Option<Vec<String>> = Some(Vec::new());
        let mut any = false;
        for g in self
            .grant
            .iter()
            .filter(|g| caller.names.iter().any(|n| n.eq_ignore_ascii_case(&g.name)))
        {
            for role in &g.roles {
                match role {
                    Role::Admin => return Some(None),
                    Role::Reader if g.zones.is_empty() => return Some(None),
                    Role::Reader => {
                        any = true;
                        if let Some(z) = zones.as_mut() {
                            z.extend(g.zones.iter().cloned());
                        }
                    }
                    _ => {}
                }
            }
        }
        any.then_some(zones)
    }
}

/// The access rules in force, reloadable.
pub struct AccessControl {
    path: Option<PathBuf>,
    current: RwLock<Arc<AccessFile>>,
}

impl AccessControl {
    /// Loads the access file (none: nobody but plaintext callers may do
    /// anything).
    pub fn load(path: Option<&Path>) -> Result<AccessControl, String> {
        let file = match path {
            Some(p) => read_access(p)?,
            None => AccessFile::default(),
        };
        Ok(AccessControl {
            path: path.map(Path::to_path_buf),
            current: RwLock::new(Arc::new(file)),
        })
    }

    /// Re-reads the file; on error the old rules stay.
    pub fn reload(&self) -> Result<usize, String> {
        let Some(p) = &self.path else { return Ok(0) };
        let file = read_access(p)?;
        let n = file.grant.len();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(file);
        Ok(n)
    }

    /// Refuses with PermissionDenied naming the missing right.
    pub fn check(&self, caller: &Caller, right: &Right) -> Result<(), AccessError> {
        let rules = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if rules.allows(caller, right) {
            Ok(())
        } else {
            Err(AccessError::Denied {
                caller: caller.identity().to_string(),
                right: right.to_string(),
            })
        }
    }
}

impl AccessControl {
    /// The zones the caller may read (None: all), or PermissionDenied.
    pub fn readable_zones(&self, caller: &Caller) -> Result<Option<Vec<String>>, AccessError> {
        let rules = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        rules
            .readable_zones(caller)
            .ok_or_else(|| AccessError::Denied {
                caller: caller.identity().to_string(),
                right: Right::ReadSome.to_string(),
            })
    }
}

fn read_access(p: &Path) -> Result<AccessFile, String> {
    let text = std::fs::read_to_string(p)
        .map_err(|e| format!("cannot read access file {}: {e}", p.display()))?;
    AccessFile::parse(&text).map_err(|e| format!("access file {}: {e}", p.display()))
}

/// The names in a DER certificate: DNS, URI and e-mail SANs, then the CN.
pub fn certificate_names(der: &[u8]) -> Vec<String> {
    use x509_parser::prelude::*;
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(s) | GeneralName::URI(s) | GeneralName::RFC822Name(s) => {
                    names.push(s.to_string())
                }
                _ => {}
            }
        }
    }
    for cn in cert.subject().iter_common_name() {
        if let Ok(s) = cn.as_str() {
            names.push(s.to_string());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(name: &str) -> Caller {
        Caller {
            names: vec![name.to_string()],
            plaintext: false,
        }
    }

    const FILE: &str = r#"
[[grant]]
name = "ops"
roles = ["admin"]
[[grant]]
name = "ns1"
roles = ["signer"]
zones = ["a.example"]
[[grant]]
name = "audit"
roles = ["reader"]
[[grant]]
name = "node-b"
roles = ["node"]
"#;

    #[test]
    fn each_role_has_exactly_its_rights() {
        let f = AccessFile::parse(FILE).unwrap();
        let a = Right::Sign("a.example.".into());
        let b = Right::Sign("b.example".into());
        assert!(f.allows(&caller("ops"), &Right::Manage));
        assert!(f.allows(&caller("ops"), &b));
        assert!(!f.allows(&caller("ops"), &Right::Peer));
        assert!(f.allows(&caller("ns1"), &a));
        assert!(
            !f.allows(&caller("ns1"), &b),
            "a signer for zone A signs not for B"
        );
        assert!(f.allows(&caller("ns1"), &Right::ReadPublic("A.example".into())));
        assert!(!f.allows(&caller("ns1"), &Right::Read));
        assert!(!f.allows(&caller("ns1"), &Right::Manage));
        assert!(f.allows(&caller("audit"), &Right::Read));
        assert!(f.allows(&caller("audit"), &Right::ReadZone("b.example".into())));
        assert!(f.allows(&caller("audit"), &Right::ReadPublic("b.example".into())));
        assert!(!f.allows(&caller("audit"), &a));
        assert!(!f.allows(&caller("audit"), &Right::Manage));
        assert!(f.allows(&caller("node-b"), &Right::Peer));
        assert!(!f.allows(&caller("node-b"), &Right::Manage));
        assert!(!f.allows(&caller("stranger"), &Right::Read));
    }

    #[test]
    fn a_reader_with_zones_reads_those_zones_only() {
        let f = AccessFile::parse(
            "[[grant]]\nname = \"mon\"\nroles = [\"reader\"]\nzones = [\"a.example\"]\n\
             [[grant]]\nname = \"ops\"\nroles = [\"admin\"]\n",
        )
        .unwrap();
        let mon = caller("mon");
        assert!(f.allows(&mon, &Right::ReadZone("A.example.".into())));
        assert!(f.allows(&mon, &Right::ReadPublic("a.example".into())));
        assert!(!f.allows(&mon, &Right::ReadZone("b.example".into())));
        assert!(!f.allows(&mon, &Right::ReadPublic("b.example".into())));
        assert!(!f.allows(&mon, &Right::Read), "nodes and the whole log");
        assert_eq!(
            f.readable_zones(&mon),
            Some(Some(vec!["a.example.".to_string()]))
        );
        assert_eq!(f.readable_zones(&caller("ops")), Some(None));
        assert_eq!(f.readable_zones(&caller("stranger")), None);
        let e = AccessFile::parse(
            "[[grant]]\nname = \"x\"\nroles = [\"admin\"]\nzones = [\"a.example\"]\n",
        )
        .unwrap_err();
        assert!(e.contains("signer and reader only"), "{e}");
    }

    #[test]
    fn signer_without_zones_is_refused() {
        let e = AccessFile::parse("[[grant]]\nname = \"x\"\nroles = [\"signer\"]\n").unwrap_err();
        assert!(e.contains("needs zones"));
    }

    #[test]
    fn denial_names_the_missing_right() {
        let ac = AccessControl::load(None).unwrap();
        let e = ac.check(&caller("ns9"), &Right::Manage).unwrap_err();
        assert!(e.to_string().contains("ns9 may not manage zones and keys"));
    }
}
