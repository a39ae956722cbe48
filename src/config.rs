//! keymasterd's settings: a TOML file, each setting also a flag or an
//! environment variable (flag and environment win over the file). The PIN
//! comes from a PIN file or `KEYMASTER_PIN` and lives only in a `Secret`.

use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

use crate::hsm::{TokenConfig, TokenSelector};
use crate::secret::Secret;
use crate::signing::Limits;
use crate::store::StoreTls;

/// Debian's SoftHSM2 module, the default for development.
pub const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7353";
pub const DEFAULT_STORE: &str = "sqlite:keymaster.db";

/// Command line of keymasterd.
#[derive(Debug, Parser)]
#[command(
    name = "keymasterd",
    version,
    about = "HSM-backed DNSSEC key management and signing service"
)]
pub struct DaemonArgs {
    /// TOML configuration file; flags and environment override it.
    #[arg(long, env = "KEYMASTER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Check the configuration (files, certificates, access and TSIG key
    /// files, the token and PIN) and exit, without serving or touching the
    /// store.
    #[arg(long)]
    pub check_config: bool,
    /// Stable id of this node.
    #[arg(long, env = "KEYMASTER_NODE_ID")]
    pub node_id: Option<String>,
    /// Address to serve gRPC on (host:port).
    #[arg(long, env = "KEYMASTER_LISTEN")]
    pub listen: Option<String>,
    /// Path of the PKCS#11 module.
    #[arg(long, env = "KEYMASTER_PKCS11_MODULE")]
    pub pkcs11_module: Option<String>,
    /// Token by label.
    #[arg(long, env = "KEYMASTER_TOKEN_LABEL")]
    pub token_label: Option<String>,
    /// Token by serial number.
    #[arg(long, env = "KEYMASTER_TOKEN_SERIAL")]
    pub token_serial: Option<String>,
    /// Token by RFC 7512 URI (pkcs11:token=…;serial=…).
    #[arg(long, env = "KEYMASTER_TOKEN_URI")]
    pub token_uri: Option<String>,
    /// File holding the user PIN (not world-readable). Or set KEYMASTER_PIN.
    #[arg(long, env = "KEYMASTER_PIN_FILE")]
    pub pin_file: Option<PathBuf>,
    /// Store: sqlite:PATH or etcd:http(s)://HOST:PORT[,…].
    #[arg(long, env = "KEYMASTER_STORE")]
    pub store: Option<String>,
    /// CA (PEM) of the etcd servers' certificates (etcd:https://…).
    #[arg(long, env = "KEYMASTER_STORE_CA")]
    pub store_ca: Option<PathBuf>,
    /// Client certificate (PEM) this node presents to etcd.
    #[arg(long, env = "KEYMASTER_STORE_CERT")]
    pub store_cert: Option<PathBuf>,
    /// Private key (PEM) of the etcd client certificate.
    #[arg(long, env = "KEYMASTER_STORE_KEY")]
    pub store_key: Option<PathBuf>,
    /// Log filter (error, warn, info, debug, or a tracing directive).
    #[arg(long, env = "KEYMASTER_LOG")]
    pub log: Option<String>,
    /// Log lines as `text` (default) or `json` (one object per line).
    #[arg(long, env = "KEYMASTER_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Sign with the token objects themselves, not with session-object
    /// copies of them (for HSMs whose policy forbids C_CopyObject).
    #[arg(long, env = "KEYMASTER_NO_SESSION_KEY_COPIES")]
    pub no_session_key_copies: bool,
    /// Server certificate (PEM) for TLS.
    #[arg(long, env = "KEYMASTER_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of the server certificate.
    #[arg(long, env = "KEYMASTER_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) whose certificates clients must present.
    #[arg(long, env = "KEYMASTER_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Serve plaintext gRPC without client authentication: for local
    /// development only, never in production.
    #[arg(long)]
    pub insecure_plaintext: bool,
    /// Access file: which certificate names hold which roles (re-read on
    /// SIGHUP).
    #[arg(long, env = "KEYMASTER_ACCESS_FILE")]
    pub access_file: Option<PathBuf>,
    /// Also append every audit entry to this file (JSON lines).
    #[arg(long, env = "KEYMASTER_AUDIT_FILE")]
    pub audit_file: Option<PathBuf>,
    /// Keep records of signing work here (JSON lines, fsynced) while the
    /// store cannot take them, so that signing goes on through a store
    /// outage; they reach the audit log once it is back. Without it,
    /// signing that must be recorded stops with the store.
    #[arg(long, env = "KEYMASTER_SPOOL")]
    pub spool: Option<PathBuf>,
    /// This node's own state, kept so that it signs through a store outage
    /// also after a restart: the last-known key set of every zone
    /// (`keysets/`, public facts only) and, unless --spool says otherwise,
    /// the spool (`spool.jsonl`). Default: $STATE_DIRECTORY (systemd's
    /// StateDirectory=).
    #[arg(long, env = "KEYMASTER_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Keep keyset-ZONE and dsset-ZONE files (the KSKs' DNSKEY and DS
    /// records) current in this directory for every zone this node is Key
    /// Master of.
    #[arg(long, env = "KEYMASTER_TRUST_ANCHOR_DIR")]
    pub trust_anchor_dir: Option<PathBuf>,
    /// Run as `COMMAND ZONE`, with the new DS set on standard input, when a
    /// KSK roll hands the parent a new DS (on the zone's Key Master).
    #[arg(long, env = "KEYMASTER_DS_SUBMIT_COMMAND")]
    pub ds_submit_command: Option<PathBuf>,
    /// The command that reviews a version before it is served, for zones
    /// whose policy says `review: hook`: run as `CMD ZONE SERIAL SIGNED
    /// SOURCE` (files), it approves by exit 0.
    #[arg(long, env = "KEYMASTER_REVIEW_COMMAND")]
    pub review_command: Option<PathBuf>,
    /// A recursive resolver (ADDR[:PORT]) through which RFC 9615 signals
    /// are found; keymaster validates them itself from
    /// --bootstrap-anchors.
    #[arg(long, env = "KEYMASTER_BOOTSTRAP_RESOLVER")]
    pub bootstrap_resolver: Option<String>,
    /// Trust anchors (DS or DNSKEY records, zone file form) that RFC 9615
    /// signals validate from.
    #[arg(long, env = "KEYMASTER_BOOTSTRAP_ANCHORS")]
    pub bootstrap_anchors: Option<PathBuf>,
    /// Serve the zones this node keeps signed (those with a source) to
    /// their secondaries by zone transfer on this address, UDP and TCP.
    #[arg(long, env = "KEYMASTER_DNS_LISTEN")]
    pub dns_listen: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics (plain HTTP: bind
    /// it to a loopback or management address).
    #[arg(long, env = "KEYMASTER_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Log a loud error while a served zone's earliest signature expires
    /// within this (e.g. 2d; default: an eighth of the zone's shortest
    /// signature validity).
    #[arg(long, env = "KEYMASTER_EXPIRY_WARNING")]
    pub expiry_warning: Option<String>,
    /// How long a request waits for a call into the token (e.g. 5s, the
    /// default): past it the request fails with Unavailable naming the
    /// token, and health is NOT_SERVING until the call returns.
    #[arg(long, env = "KEYMASTER_TOKEN_TIMEOUT")]
    pub token_timeout: Option<String>,
    /// TSIG keys secondaries sign transfer requests with: lines of
    /// `NAME ALGORITHM BASE64-SECRET` (a zone asks for one by name).
    #[arg(long, env = "KEYMASTER_TSIG_KEYS")]
    pub tsig_keys: Option<PathBuf>,
    /// Most concurrent zone-signing streams per caller (0: no limit).
    #[arg(long, env = "KEYMASTER_MAX_STREAMS_PER_CALLER")]
    pub max_streams_per_caller: Option<usize>,
    /// Most RRsets signed per second per caller through SignRrsets (0: no limit).
    #[arg(long, env = "KEYMASTER_SIGN_RATE_PER_CALLER")]
    pub sign_rate_per_caller: Option<u32>,
    /// Address other nodes and operators reach this node at (default: the
    /// bound listen address).
    #[arg(long, env = "KEYMASTER_ADVERTISE")]
    pub advertise: Option<String>,
    /// Liveness lease in seconds: a node whose lease is not renewed within
    /// this time is offline (renewed every third of it).
    #[arg(long, env = "KEYMASTER_LEASE_SECS")]
    pub lease_secs: Option<u64>,
    /// Write the bound address here once listening (for --listen …:0).
    #[arg(long)]
    pub address_file: Option<PathBuf>,
    /// Most RRsets in one SignRrsets request.
    #[arg(long, env = "KEYMASTER_MAX_BATCH_RRSETS")]
    pub max_batch_rrsets: Option<usize>,
    /// Most records in one zone sent for signing.
    #[arg(long, env = "KEYMASTER_MAX_ZONE_RECORDS")]
    pub max_zone_records: Option<usize>,
    /// Most bytes of one zone file sent for signing.
    #[arg(long, env = "KEYMASTER_MAX_ZONE_BYTES")]
    pub max_zone_bytes: Option<usize>,
    /// Largest gRPC request message, bytes.
    #[arg(long, env = "KEYMASTER_MAX_MESSAGE_BYTES")]
    pub max_message_bytes: Option<usize>,
}

/// The configuration file; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub node_id: Option<String>,
    pub listen: Option<String>,
    pub pkcs11_module: Option<String>,
    pub token_label: Option<String>,
    pub token_serial: Option<String>,
    pub token_uri: Option<String>,
    pub pin_file: Option<PathBuf>,
    pub store: Option<String>,
    pub store_ca: Option<PathBuf>,
    pub store_cert: Option<PathBuf>,
    pub store_key: Option<PathBuf>,
    pub log: Option<String>,
    pub log_format: Option<String>,
    pub session_key_copies: Option<bool>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_client_ca: Option<PathBuf>,
    pub insecure_plaintext: Option<bool>,
    pub access_file: Option<PathBuf>,
    pub audit_file: Option<PathBuf>,
    pub spool: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub trust_anchor_dir: Option<PathBuf>,
    pub ds_submit_command: Option<PathBuf>,
    pub review_command: Option<PathBuf>,
    pub bootstrap_resolver: Option<String>,
    pub bootstrap_anchors: Option<PathBuf>,
    pub dns_listen: Option<String>,
    pub metrics_listen: Option<String>,
    pub tsig_keys: Option<PathBuf>,
    pub expiry_warning: Option<String>,
    pub token_timeout: Option<String>,
    pub max_streams_per_caller: Option<usize>,
    pub sign_rate_per_caller: Option<u32>,
    pub advertise: Option<String>,
    pub lease_secs: Option<u64>,
    pub max_batch_rrsets: Option<usize>,
    pub max_zone_records: Option<usize>,
    pub max_zone_bytes: Option<usize>,
    pub max_message_bytes: Option<usize>,
}

/// Everything keymasterd needs to start.
#[derive(Debug)]
pub struct Config {
    pub node_id: String,
    pub listen: String,
    pub token: TokenConfig,
    pub store: String,
    /// TLS towards the store (etcd).
    pub store_tls: Option<StoreTls>,
    pub log: String,
    /// One JSON object per log line instead of text.
    pub log_json: bool,
    pub limits: Limits,
    pub max_message_bytes: usize,
    pub address_file: Option<PathBuf>,
    /// (certificate, key, client CA); None only with insecure_plaintext.
    pub tls: Option<(PathBuf, PathBuf, PathBuf)>,
    pub access_file: Option<PathBuf>,
    pub audit_file: Option<PathBuf>,
    pub spool: Option<PathBuf>,
    /// This node's state directory (last-known key sets, default spool).
    pub state_dir: Option<PathBuf>,
    pub trust_anchor_dir: Option<PathBuf>,
    pub ds_submit_command: Option<PathBuf>,
    pub review_command: Option<PathBuf>,
    pub bootstrap_resolver: Option<std::net::SocketAddr>,
    pub bootstrap_anchors: Option<PathBuf>,
    pub dns_listen: Option<String>,
    pub metrics_listen: Option<String>,
    pub tsig_keys: Option<PathBuf>,
    /// Seconds; None: an eighth of each zone's shortest validity.
    pub expiry_warning: Option<u64>,
    /// The bound on a wait for the token (`hsm::bound`).
    pub token_timeout: std::time::Duration,
    pub max_streams_per_caller: usize,
    pub sign_rate_per_caller: u32,
    pub advertise: Option<String>,
    pub lease_secs: u64,
}

/// `--bootstrap-resolver ADDR[:PORT]` (port 53 unless given).
fn resolver_address(given: Option<String>) -> Result<Option<std::net::SocketAddr>, String> {
    let Some(text) = given else {
        return Ok(None);
    };
    if let Ok(a) = text.parse::<std::net::SocketAddr>() {
        return Ok(Some(a));
    }
    match text.parse::<std::net::IpAddr>() {
        Ok(ip) => Ok(Some(std::net::SocketAddr::new(ip, 53))),
        Err(_) => Err(format!(
            "--bootstrap-resolver {text:?}: expected an IP address, with :PORT if not 53"
        )),
    }
}

impl Config {
    /// Merges flags/environment over the file over the defaults. Long
    /// because the settings are many: one field each, the checks that
    /// combine several fields in their own functions.
    pub fn resolve(args: DaemonArgs, env_pin: Option<Secret>) -> Result<Config, String> {
        let file = match &args.config {
            Some(path) => read_config_file(path)?,
            None => FileConfig::default(),
        };
        let node_id = args
            .node_id
            .or(file.node_id)
            .unwrap_or_else(default_node_id);
        if node_id.is_empty() || node_id.len() > 64 || node_id.contains(char::is_whitespace) {
            return Err(format!(
                "node id {node_id:?} must be 1..64 characters without spaces"
            ));
        }
        let selector = token_selector(
            args.token_uri.or(file.token_uri),
            args.token_serial.or(file.token_serial),
            args.token_label.or(file.token_label),
        )?;
        let pin = match (args.pin_file.or(file.pin_file), env_pin) {
            (Some(path), _) => read_pin_file(&path)?,
            (None, Some(pin)) => pin,
            (None, None) => return Err("no PIN given: use --pin-file or KEYMASTER_PIN".into()),
        };
        let plaintext = args.insecure_plaintext || file.insecure_plaintext.unwrap_or(false);
        let tls = server_tls(
            args.tls_cert.or(file.tls_cert),
            args.tls_key.or(file.tls_key),
            args.tls_client_ca.or(file.tls_client_ca),
            plaintext,
        )?;
        let store_tls = store_tls(
            args.store_ca.or(file.store_ca),
            args.store_cert.or(file.store_cert),
            args.store_key.or(file.store_key),
        )?;
        let d = Limits::default();
        let state_dir = args.state_dir.or(file.state_dir).or_else(|| {
            // systemd gives a list, colon-separated: the first is ours.
            let dirs = std::env::var("STATE_DIRECTORY").ok()?;
            dirs.split(':')
                .next()
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
        });
        Ok(Config {
            node_id,
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.into()),
            token: TokenConfig {
                module: args
                    .pkcs11_module
                    .or(file.pkcs11_module)
                    .unwrap_or_else(|| DEFAULT_MODULE.into()),
                selector,
                pin,
                session_key_copies: !args.no_session_key_copies
                    && file.session_key_copies.unwrap_or(true),
            },
            store: args
                .store
                .or(file.store)
                .unwrap_or_else(|| DEFAULT_STORE.into()),
            store_tls,
            log: args.log.or(file.log).unwrap_or_else(|| "info".into()),
            log_json: match args.log_format.or(file.log_format).as_deref() {
                None | Some("text") => false,
                Some("json") => true,
                Some(other) => {
                    return Err(format!("log format {other:?} is not text or json"));
                }
            },
            limits: Limits {
                max_batch_rrsets: args
                    .max_batch_rrsets
                    .or(file.max_batch_rrsets)
                    .unwrap_or(d.max_batch_rrsets),
                max_zone_records: args
                    .max_zone_records
                    .or(file.max_zone_records)
                    .unwrap_or(d.max_zone_records),
                max_zone_bytes: args
                    .max_zone_bytes
                    .or(file.max_zone_bytes)
                    .unwrap_or(d.max_zone_bytes),
            },
            max_message_bytes: args
                .max_message_bytes
                .or(file.max_message_bytes)
                .unwrap_or(16 << 20),
            address_file: args.address_file,
            tls,
            access_file: args.access_file.or(file.access_file),
            audit_file: args.audit_file.or(file.audit_file),
            spool: args
                .spool
                .or(file.spool)
                .or_else(|| state_dir.as_ref().map(|d| d.join("spool.jsonl"))),
            state_dir,
            trust_anchor_dir: args.trust_anchor_dir.or(file.trust_anchor_dir),
            ds_submit_command: args.ds_submit_command.or(file.ds_submit_command),
            review_command: args.review_command.or(file.review_command),
            bootstrap_resolver: resolver_address(
                args.bootstrap_resolver.or(file.bootstrap_resolver),
            )?,
            bootstrap_anchors: args.bootstrap_anchors.or(file.bootstrap_anchors),
            dns_listen: args.dns_listen.or(file.dns_listen),
            metrics_listen: args.metrics_listen.or(file.metrics_listen),
            tsig_keys: args.tsig_keys.or(file.tsig_keys),
            expiry_warning: match args.expiry_warning.or(file.expiry_warning) {
                Some(d) => Some(u64::from(
                    crate::policy::parse_duration(&d)
                        .map_err(|e| format!("--expiry-warning {d:?}: {e}"))?,
                )),
                None => None,
            },
            token_timeout: match args.token_timeout.or(file.token_timeout) {
                Some(d) => match crate::policy::parse_duration(&d) {
                    Ok(0) => return Err(format!("--token-timeout {d:?}: must be above 0")),
                    Ok(secs) => std::time::Duration::from_secs(u64::from(secs)),
                    Err(e) => return Err(format!("--token-timeout {d:?}: {e}")),
                },
                None => crate::hsm::bound::DEFAULT_BOUND,
            },
            max_streams_per_caller: args
                .max_streams_per_caller
                .or(file.max_streams_per_caller)
                .unwrap_or(4),
            sign_rate_per_caller: args
                .sign_rate_per_caller
                .or(file.sign_rate_per_caller)
                .unwrap_or(0),
            advertise: args.advertise.or(file.advertise),
            lease_secs: args.lease_secs.or(file.lease_secs).unwrap_or(10).max(1),
        })
    }
}

fn read_config_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
    toml::from_str::<FileConfig>(&text).map_err(|e| format!("config {}: {e}", path.display()))
}

/// The token, by exactly one of URI, serial or label.
fn token_selector(
    uri: Option<String>,
    serial: Option<String>,
    label: Option<String>,
) -> Result<TokenSelector, String> {
    match (uri, serial, label) {
        (Some(uri), None, None) => TokenSelector::from_uri(&uri).map_err(|e| e.to_string()),
        (None, Some(serial), None) => Ok(TokenSelector::by_serial(&serial)),
        (None, None, Some(label)) => Ok(TokenSelector::by_label(&label)),
        (None, None, None) => {
            Err("no token given: use --token-label, --token-serial or --token-uri".into())
        }
        _ => Err("give only one of --token-label, --token-serial, --token-uri".into()),
    }
}

/// The server's certificate, key and client CA: all three, or none with
/// --insecure-plaintext.
fn server_tls(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
    plaintext: bool,
) -> Result<Option<(PathBuf, PathBuf, PathBuf)>, String> {
    match (cert, key, ca) {
        (Some(c), Some(k), Some(ca)) if !plaintext => Ok(Some((c, k, ca))),
        (None, None, None) if plaintext => Ok(None),
        _ if plaintext => Err("give either the TLS files or --insecure-plaintext, not both".into()),
        _ => Err("TLS needs --tls-cert, --tls-key and --tls-client-ca \
             (or --insecure-plaintext for local development)"
            .into()),
    }
}

/// TLS towards etcd: a CA, and a client certificate with its key.
fn store_tls(
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> Result<Option<StoreTls>, String> {
    match (ca, cert, key) {
        (None, None, None) => Ok(None),
        (Some(ca), None, None) => Ok(Some(StoreTls { ca, identity: None })),
        (Some(ca), Some(cert), Some(key)) => Ok(Some(StoreTls {
            ca,
            identity: Some((cert, key)),
        })),
        _ => Err(
            "store TLS needs --store-ca, and --store-cert with --store-key \
             for a client certificate"
                .into(),
        ),
    }
}

fn default_node_id() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "node-1".to_string())
}

/// Reads a PIN file, refusing one that others can read.
pub fn read_pin_file(path: &Path) -> Result<Secret, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read PIN file {}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o007 != 0 {
        return Err(format!(
            "PIN file {} is accessible to every user (mode {:o}); chmod 600 or 640 it",
            path.display(),
            meta.permissions().mode() & 0o777
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read PIN file {}: {e}", path.display()))?;
    let pin = Secret::new(text);
    if pin.is_empty() {
        return Err(format!("PIN file {} is empty", path.display()));
    }
    Ok(pin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn args(extra: &[&str]) -> DaemonArgs {
        let mut v = vec!["keymasterd"];
        v.extend_from_slice(extra);
        DaemonArgs::parse_from(v)
    }

    #[test]
    fn world_readable_pin_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("km-pin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pin");
        std::fs::write(&f, "1234\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_pin_file(&f).unwrap_err().contains("every user"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_pin_file(&f).unwrap().expose(), "1234");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let dir = std::env::temp_dir().join(format!("km-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("k.toml");
        std::fs::write(
            &f,
            "node_id = \"from-file\"\ntoken_label = \"t\"\nlisten = \"127.0.0.1:1\"\n",
        )
        .unwrap();
        let c = Config::resolve(
            args(&[
                "--config",
                f.to_str().unwrap(),
                "--listen",
                "127.0.0.1:2",
                "--insecure-plaintext",
            ]),
            Some(Secret::new("1".into())),
        )
        .unwrap();
        assert_eq!(c.node_id, "from-file");
        assert_eq!(c.listen, "127.0.0.1:2");
        assert_eq!(c.store, DEFAULT_STORE);
        assert!(!format!("{c:?}").contains("Secret(\"1\")"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn store_tls_needs_its_ca_and_a_whole_client_identity() {
        let resolve = |extra: &[&str]| {
            let mut a = vec!["--token-label", "t", "--insecure-plaintext"];
            a.extend_from_slice(extra);
            Config::resolve(args(&a), Some(Secret::new("1".into())))
        };
        let e = resolve(&["--store-cert", "c.pem", "--store-key", "k.pem"]).unwrap_err();
        assert!(e.contains("--store-ca"), "{e}");
        let e = resolve(&["--store-ca", "ca.pem", "--store-cert", "c.pem"]).unwrap_err();
        assert!(e.contains("--store-key"), "{e}");
        let c = resolve(&["--store-ca", "ca.pem"]).unwrap();
        assert_eq!(c.store_tls.unwrap().ca, PathBuf::from("ca.pem"));
    }

    #[test]
    fn two_token_selectors_are_refused() {
        let e = Config::resolve(
            args(&[
                "--token-label",
                "a",
                "--token-serial",
                "b",
                "--insecure-plaintext",
            ]),
            Some(Secret::new("1".into())),
        )
        .unwrap_err();
        assert!(e.contains("only one"));
    }

    #[test]
    fn unknown_config_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("km-cfg2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("k.toml");
        std::fs::write(&f, "tokne_label = \"t\"\n").unwrap();
        let e = Config::resolve(args(&["--config", f.to_str().unwrap()]), None).unwrap_err();
        assert!(e.contains("tokne_label"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
