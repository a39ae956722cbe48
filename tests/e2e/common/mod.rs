//! Shared helpers for the integration tests: a fresh SoftHSM2 token per
//! test, real keymasterd processes on 127.0.0.1 with ports chosen at run
//! time (stopped by PID when the test ends, also on failure), keymasterctl,
//! and the independent validators.
#![allow(dead_code)]

pub mod dns;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub const PIN: &str = "1234";

/// A zone's policy for a KSK roll that a test sees to its end in about a
/// minute: NSEC, data TTL 3 s (the source's) below the DNSKEY TTL (6 s)
/// below the DS TTL (9 s), waits of a second, no rolls by lifetime.
pub const QUICK_ROLLS: &[&str] = &[
    "--denial",
    "nsec",
    "--dnskey-ttl",
    "6",
    "--ds-ttl",
    "9",
    "--parent-ds-ttl",
    "9",
    "--max-zone-ttl",
    "6",
    "--propagation-time",
    "1",
    "--parent-propagation",
    "1",
    "--safety-margin",
    "1",
    "--zsk-lifetime",
    "off",
    "--ksk-lifetime",
    "off",
];

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("km-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("make temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("KM_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A fresh SoftHSM2 token in its own directory.
pub struct TestToken {
    pub dir: TempDir,
    pub label: String,
    pub conf: PathBuf,
    pub pin_file: PathBuf,
}

impl TestToken {
    pub fn new(name: &str) -> TestToken {
        let dir = TempDir::new(name);
        let label = format!("t-{name}");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("softhsm/new-token.sh");
        let out = Command::new("bash")
            .arg(script)
            .arg(dir.path())
            .arg(&label)
            .arg(PIN)
            .output()
            .expect("run softhsm/new-token.sh");
        assert!(
            out.status.success(),
            "token creation failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let conf = dir.path().join("softhsm2.conf");
        let pin_file = dir.path().join("pin");
        TestToken {
            dir,
            label,
            conf,
            pin_file,
        }
    }

    /// `pkcs11-tool` on this token, logged in; its standard output.
    fn pkcs11_tool(&self, args: &[&str]) -> String {
        let out = Command::new("pkcs11-tool")
            .env("SOFTHSM2_CONF", &self.conf)
            .args(["--module", MODULE, "--token-label", &self.label])
            .args(["--login", "--pin", PIN])
            .args(args)
            .output()
            .expect("run pkcs11-tool (package opensc)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Takes the write lock a SoftHSM2 process holds while it changes the
    /// token (on the token's `generation` file, which every other process
    /// reads under a shared lock before it looks at the token's objects),
    /// and keeps it until the guard is dropped: what a node stopped
    /// (SIGSTOP) inside a token write leaves the other processes with.
    pub fn hold_write_lock(&self) -> TokenLock {
        use std::os::fd::AsRawFd;
        let dir = std::fs::read_dir(self.dir.path().join("tokens"))
            .unwrap()
            .flatten()
            .find(|e| e.path().is_dir())
            .expect("the token's directory")
            .path();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join("generation"))
            .expect("the token's generation file");
        // SAFETY: fcntl with F_SETLKW and a flock struct we own.
        let taken = unsafe {
            let mut lock: libc::flock = std::mem::zeroed();
            lock.l_type = libc::F_WRLCK as libc::c_short;
            lock.l_whence = libc::SEEK_SET as libc::c_short;
            libc::fcntl(file.as_raw_fd(), libc::F_SETLKW, &lock)
        };
        assert_eq!(taken, 0, "cannot lock the token's generation file");
        TokenLock(Some(file))
    }

    /// Deletes the private key with this CKA_ID (hex) behind keymaster's
    /// back, as a token that lost a key would.
    pub fn delete_private_key(&self, id_hex: &str) {
        self.pkcs11_tool(&["--delete-object", "--type", "privkey", "--id", id_hex]);
    }

    /// `pkcs11-tool --list-objects` of this token, logged in.
    pub fn list_objects(&self) -> String {
        self.pkcs11_tool(&["--list-objects"])
    }

    /// Makes a P-256 key pair with this CKA_ID (hex) and label behind
    /// keymaster's back, as a key whose record never got written would be.
    pub fn make_key_pair(&self, id_hex: &str, label: &str) {
        self.pkcs11_tool(&[
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--id",
            id_hex,
            "--label",
            label,
        ]);
    }
}

/// A test PKI made at run time: a CA, a server certificate for 127.0.0.1
/// and client certificates by name.
pub struct Pki {
    pub dir: TempDir,
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    pub ca_pem: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

/// A client certificate and key on disk.
#[derive(Debug, Clone)]
pub struct ClientCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn ca_params(cn: &str) -> rcgen::CertificateParams {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    p
}

impl Pki {
    pub fn new() -> Pki {
        let dir = TempDir::new("pki");
        let ca = rcgen::CertifiedIssuer::self_signed(
            ca_params("keymaster test CA"),
            rcgen::KeyPair::generate().unwrap(),
        )
        .unwrap();
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&ca_pem, ca.pem()).unwrap();
        let mut pki = Pki {
            dir,
            ca,
            ca_pem,
            server_cert: PathBuf::new(),
            server_key: PathBuf::new(),
        };
        // Every test node serves with this certificate and presents it to
        // its peers when it forwards a call.
        let server = pki.issue(
            "server",
            &[NODE_NAME, "127.0.0.1", "localhost"],
            None,
            false,
        );
        pki.server_cert = server.cert;
        pki.server_key = server.key;
        pki
    }

    /// A certificate for the given SANs (and CN), signed by this CA, or
    /// expired when asked.
    pub fn issue(&self, file: &str, sans: &[&str], cn: Option<&str>, expired: bool) -> ClientCert {
        let mut p =
            rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        if let Some(cn) = cn {
            p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        }
        if expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.ca).unwrap();
        write_pair(self.dir.path(), file, &cert.pem(), &key.serialize_pem())
    }

    /// A client certificate for the name, signed by this CA.
    pub fn client(&self, name: &str) -> ClientCert {
        self.issue(&format!("client-{name}"), &[name], Some(name), false)
    }

    /// A certificate for the name from another CA that the server does not trust.
    pub fn foreign_client(&self, name: &str) -> ClientCert {
        let other = rcgen::CertifiedIssuer::self_signed(
            ca_params("rogue CA"),
            rcgen::KeyPair::generate().unwrap(),
        )
        .unwrap();
        let p = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &other).unwrap();
        write_pair(
            self.dir.path(),
            &format!("foreign-{name}"),
            &cert.pem(),
            &key.serialize_pem(),
        )
    }
}

/// Writes a certificate and its key under names of their own (a number
/// added), so that nodes started at once never read each other's half.
fn write_pair(dir: &Path, file: &str, cert: &str, key: &str) -> ClientCert {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let c = dir.join(format!("{file}-{n}.pem"));
    let k = dir.join(format!("{file}-{n}.key"));
    std::fs::write(&c, cert).unwrap();
    std::fs::write(&k, key).unwrap();
    ClientCert { cert: c, key: k }
}

/// The identity every test uses unless it says otherwise: role admin.
pub const ADMIN: &str = "admin.test";

/// The name in the test nodes' certificate.
pub const NODE_NAME: &str = "keymaster-node.test";

/// The default access file: ADMIN is admin, the nodes are nodes.
pub fn default_access() -> String {
    format!(
        "[[grant]]\nname = \"{ADMIN}\"\nroles = [\"admin\"]\n\n\
         [[grant]]\nname = \"{NODE_NAME}\"\nroles = [\"node\"]\n"
    )
}

/// The token's write lock, held until dropped (`TestToken::hold_write_lock`).
pub struct TokenLock(Option<std::fs::File>);

impl TokenLock {
    /// Lets go of the lock (closing the file releases it).
    pub fn release(&mut self) {
        self.0.take();
    }
}

/// A running keymasterd, serving TLS with client certificates required.
pub struct Daemon {
    pub child: Option<Child>,
    pub addr: String,
    pub dir: TempDir,
    pub store: String,
    pub log: PathBuf,
    pub pki: std::sync::Arc<Pki>,
    pub access_file: PathBuf,
    pub admin: ClientCert,
}

pub fn keymasterd() -> &'static str {
    env!("CARGO_BIN_EXE_keymasterd")
}

pub fn keymasterctl_bin() -> &'static str {
    env!("CARGO_BIN_EXE_keymasterctl")
}

impl Daemon {
    /// Starts keymasterd on a fresh store for this token.
    pub fn start(token: &TestToken, node: &str, extra: &[&str]) -> Daemon {
        let dir = TempDir::new(&format!("d-{node}"));
        let store = format!("sqlite:{}", dir.path().join("keymaster.db").display());
        Self::start_with_store(token, node, &store, dir, extra)
    }

    pub fn start_with_store(
        token: &TestToken,
        node: &str,
        store: &str,
        dir: TempDir,
        extra: &[&str],
    ) -> Daemon {
        Self::start_in_cluster(
            token,
            node,
            store,
            dir,
            std::sync::Arc::new(Pki::new()),
            extra,
        )
    }

    /// Starts node `id` of a test cluster in a directory of its own.
    pub fn start_node(
        token: &TestToken,
        id: &str,
        store: &str,
        pki: &std::sync::Arc<Pki>,
        extra: &[&str],
    ) -> Daemon {
        Self::start_in_cluster(token, id, store, TempDir::new(id), pki.clone(), extra)
    }

    /// Starts keymasterd with a PKI shared by several nodes.
    pub fn start_in_cluster(
        token: &TestToken,
        node: &str,
        store: &str,
        dir: TempDir,
        pki: std::sync::Arc<Pki>,
        extra: &[&str],
    ) -> Daemon {
        Self::start_full(token, node, store, dir, pki, extra, &[])
    }

    /// Starts keymasterd with `env` set for it alone.
    pub fn start_with_env(
        token: &TestToken,
        node: &str,
        extra: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Daemon {
        let dir = TempDir::new(&format!("d-{node}"));
        let store = format!("sqlite:{}", dir.path().join("keymaster.db").display());
        Self::start_full(
            token,
            node,
            &store,
            dir,
            std::sync::Arc::new(Pki::new()),
            extra,
            env,
        )
    }

    /// Starts keymasterd as systemd would, with `NOTIFY_SOCKET` set for it
    /// alone (the tests' process shares its environment with every test).
    pub fn start_notifying(token: &TestToken, node: &str, socket: &Path) -> Daemon {
        let dir = TempDir::new(&format!("d-{node}"));
        let store = format!("sqlite:{}", dir.path().join("keymaster.db").display());
        let env = [("NOTIFY_SOCKET", socket.as_os_str())];
        Self::start_full(
            token,
            node,
            &store,
            dir,
            std::sync::Arc::new(Pki::new()),
            &[],
            &env,
        )
    }

    fn start_full(
        token: &TestToken,
        node: &str,
        store: &str,
        dir: TempDir,
        pki: std::sync::Arc<Pki>,
        extra: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Daemon {
        let access_file = dir.path().join("access.toml");
        if !access_file.exists() {
            std::fs::write(&access_file, default_access()).unwrap();
        }
        let admin = pki.client(ADMIN);
        let addr_file = dir.path().join("addr");
        let _ = std::fs::remove_file(&addr_file);
        let log = dir.path().join(format!(
            "keymasterd-{}.log",
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let child = Command::new(keymasterd())
            .envs(env.iter().copied())
            .env("SOFTHSM2_CONF", &token.conf)
            .env_remove("KEYMASTER_PIN")
            .args([
                "--node-id",
                node,
                "--listen",
                "127.0.0.1:0",
                "--pkcs11-module",
                MODULE,
            ])
            .args(["--token-label", &token.label])
            .arg("--pin-file")
            .arg(&token.pin_file)
            .args(["--store", store])
            .arg("--address-file")
            .arg(&addr_file)
            .arg("--tls-cert")
            .arg(&pki.server_cert)
            .arg("--tls-key")
            .arg(&pki.server_key)
            .arg("--tls-client-ca")
            .arg(&pki.ca_pem)
            .arg("--access-file")
            .arg(&access_file)
            // Its own state (last-known key sets, spool), as a deployed
            // node has, unless the test names one that outlives the node.
            .args(if extra.contains(&"--state-dir") {
                vec![]
            } else {
                vec![
                    "--state-dir".to_string(),
                    dir.path().join("state").display().to_string(),
                ]
            })
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start keymasterd");
        let mut d = Daemon {
            child: Some(child),
            addr: String::new(),
            dir,
            store: store.to_string(),
            log,
            pki,
            access_file,
            admin,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(a) = std::fs::read_to_string(&addr_file) {
                d.addr = a.trim().to_string();
                break;
            }
            if let Some(status) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("keymasterd exited with {status}: {}", d.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "keymasterd did not start: {}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Replaces the access file and tells keymasterd to re-read it.
    pub fn set_access(&self, text: &str) {
        let seen = |t: &str| {
            t.matches("access file reloaded").count()
                + t.matches("access file not reloaded").count()
        };
        let before = seen(&self.log_text());
        std::fs::write(&self.access_file, text).unwrap();
        signal_pid(self.pid(), "HUP");
        let deadline = Instant::now() + Duration::from_secs(20);
        while seen(&self.log_text()) == before {
            assert!(
                Instant::now() < deadline,
                "keymasterd did not re-read its access file"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM, then wait; returns whether it exited by itself in time.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        signal_pid(child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// keymasterctl against this daemon, as the admin.
    pub fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_as(&self.admin, args)
    }

    /// keymasterctl against this daemon with the given client certificate.
    pub fn ctl_as(&self, who: &ClientCert, args: &[&str]) -> Output {
        self.ctl_command_as(who, args)
            .output()
            .expect("run keymasterctl")
    }

    /// keymasterctl as the admin, to be started by the caller (who may
    /// kill it: a client that gives up).
    pub fn ctl_command(&self, args: &[&str]) -> Command {
        self.ctl_command_as(&self.admin, args)
    }

    fn ctl_command_as(&self, who: &ClientCert, args: &[&str]) -> Command {
        let mut c = Command::new(keymasterctl_bin());
        c.env_remove("KEYMASTER_SERVER")
            .args(["--server", &self.url()])
            .arg("--ca")
            .arg(&self.pki.ca_pem)
            .arg("--cert")
            .arg(&who.cert)
            .arg("--key")
            .arg(&who.key)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// A gRPC channel with the given client certificate.
    pub async fn channel_as(&self, who: &ClientCert) -> Result<tonic::transport::Channel, String> {
        keymaster::grpc::client::connect(&keymaster::grpc::client::ClientArgs {
            server: self.url(),
            ca: Some(self.pki.ca_pem.clone()),
            cert: Some(who.cert.clone()),
            key: Some(who.key.clone()),
            server_name: None,
        })
        .await
    }

    /// `zone sign` of `text` through keymasterctl, file to file in a fresh
    /// directory; returns the directory (keep it alive), the output path and
    /// keymasterctl's result.
    pub fn sign_text(&self, zone: &str, text: &str) -> (TempDir, PathBuf, Output) {
        let work = TempDir::new("sign");
        let input = work.path().join("in.zone");
        let output = work.path().join("out.zone");
        std::fs::write(&input, text).unwrap();
        let out = self.ctl(&[
            "zone",
            "sign",
            zone,
            "--in",
            input.to_str().unwrap(),
            "--out",
            output.to_str().unwrap(),
        ]);
        (work, output, out)
    }

    /// `sign_text` that must succeed and validate with both validators;
    /// returns the directory, the signed file and keymasterctl's stdout.
    pub fn sign_validated(&self, zone: &str, text: &str) -> (TempDir, PathBuf, String) {
        let (work, output, out) = self.sign_text(zone, text);
        assert!(
            out.status.success(),
            "zone sign {zone} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        assert_validates(&output, zone);
        assert_keeps_every_record(&work.path().join("in.zone"), &output, zone);
        (
            work,
            output,
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// The zone's keys from `key list`: (id, role, state, key tag).
    pub fn key_rows(&self, zone: &str) -> Vec<(String, String, String, u64)> {
        let v: serde_json::Value =
            serde_json::from_str(&self.ctl_ok(&["key", "list", zone, "--json"])).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["id"].as_str().unwrap().to_string(),
                    k["role"].as_str().unwrap().to_string(),
                    k["state"].as_str().unwrap().to_string(),
                    k["key_tag"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    /// The zone's audit entries, oldest first, as `audit --json` gives them.
    pub fn audit_entries(&self, zone: &str) -> Vec<serde_json::Value> {
        self.ctl_ok(&["audit", "--zone", zone, "--json"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The details of the zone's audit entries of one action.
    pub fn audit_details(&self, zone: &str, action: &str) -> Vec<String> {
        self.audit_entries(zone)
            .into_iter()
            .filter(|e| e["action"] == action)
            .map(|e| e["detail"].as_str().unwrap().to_string())
            .collect()
    }

    /// Adds a zone that rolls nothing by itself (NSEC, no key lifetimes),
    /// with `extra` settings.
    pub fn add_still_zone(&self, zone: &str, extra: &[&str]) {
        let mut args = vec![
            "zone",
            "add",
            zone,
            "--denial",
            "nsec",
            "--ksk-lifetime",
            "off",
            "--zsk-lifetime",
            "off",
        ];
        args.extend_from_slice(extra);
        self.ctl_ok(&args);
    }

    /// Has keymaster keep `zone` signed from `text` (a file in `dir`) and
    /// send it to `secondary`; returns once the secondary serves serial 1.
    pub fn keep_signed(&self, zone: &str, dir: &TempDir, text: &str, secondary: &dns::Knot) {
        let src = dir.path().join(zone);
        std::fs::write(&src, text).unwrap();
        self.ctl_ok(&[
            "zone",
            "source",
            zone,
            "--file",
            src.to_str().unwrap(),
            "--secondary",
            &secondary.addr(),
        ]);
        secondary.wait_for_serial(zone, 1, std::time::Duration::from_secs(20));
    }

    /// keymasterctl that must succeed; returns its stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "keymasterctl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// keymasterctl that must fail; returns its stderr.
    pub fn ctl_err(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            !out.status.success(),
            "keymasterctl {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub async fn zones_client(
        &self,
    ) -> keymaster::proto::zones_client::ZonesClient<tonic::transport::Channel> {
        self.zones_client_as(&self.admin).await
    }

    pub async fn zones_client_as(
        &self,
        who: &ClientCert,
    ) -> keymaster::proto::zones_client::ZonesClient<tonic::transport::Channel> {
        keymaster::proto::zones_client::ZonesClient::new(
            self.channel_as(who).await.expect("connect"),
        )
    }

    pub async fn signer_client(
        &self,
    ) -> keymaster::proto::signer_client::SignerClient<tonic::transport::Channel> {
        keymaster::proto::signer_client::SignerClient::new(
            self.channel_as(&self.admin).await.expect("connect"),
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends a signal by PID ("KILL", "STOP", "CONT", "TERM", "HUP").
pub fn signal_pid(pid: u32, signal: &str) {
    let sig = match signal {
        "KILL" => libc::SIGKILL,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        "TERM" => libc::SIGTERM,
        "HUP" => libc::SIGHUP,
        other => panic!("signal {other} is not one the tests send"),
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// A zone with the features signing must get right: apex data, hosts with
/// mixed case, an empty non-terminal, a wildcard, a secure and an insecure
/// delegation with glue, TXT with spaces, CAA, SRV, and `rrsets` more
/// A/AAAA owners.
pub fn sample_zone(origin: &str, rrsets: usize) -> String {
    let o = origin.trim_end_matches('.');
    let mut z = format!(
        "$ORIGIN {o}.\n$TTL 3600\n\
         @ IN SOA ns1.{o}. hostmaster.{o}. ( 2026112701 7200 3600 1209600 300 )\n\
         @ IN NS ns1.{o}.\n@ IN NS NS2.{o}.\n@ IN MX 10 Mail.{o}.\n\
         @ IN TXT \"v=spf1 mx -all\" \"second string\"\n\
         @ IN CAA 0 issue \"letsencrypt.org\"\n\
         ns1 IN A 192.0.2.1\nns2 IN A 192.0.2.2\nMail IN AAAA 2001:db8::25\n\
         _sip._tcp IN SRV 10 60 5060 sip.{o}.\nsip 300 IN A 192.0.2.5\n\
         a.b.c IN A 192.0.2.9\n\
         *.wild IN TXT \"wildcard\"\n\
         secure IN NS ns.secure.{o}.\nsecure IN DS 12345 13 2 \
         8f2f7ad9b5a4ad1e63c4e2e5c0d6b8a6f1e7d8c9b0a1f2e3d4c5b6a798001122\n\
         ns.secure IN A 192.0.2.53\n\
         insecure IN NS ns.insecure.{o}.\nns.insecure IN A 192.0.2.54\n\
         deep.ns.insecure IN A 192.0.2.55\n"
    );
    for i in 0..rrsets {
        if i % 3 == 0 {
            z.push_str(&format!("host{i} IN AAAA 2001:db8::{:x}\n", i + 1));
        } else {
            z.push_str(&format!("Host{i} 600 IN A 198.51.100.{}\n", i % 250));
        }
    }
    z
}

/// Runs a validator; returns (success, output).
pub fn run_validator(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("run validator");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Checks a signed zone as four tools nobody here wrote do: ldns-verify-zone
/// and BIND's dnssec-verify (signatures and the denial chain), and
/// named-checkzone and Knot's kzonecheck (the zone as a server would load
/// it: glue, delegations, and DNSSEC once more).
pub fn assert_validates(zone_file: &Path, origin: &str) {
    let (ok, text) = run_validator(Command::new("ldns-verify-zone").arg(zone_file));
    assert!(
        ok,
        "ldns-verify-zone rejected {}: {text}",
        zone_file.display()
    );
    let (ok, text) = run_validator(
        Command::new("dnssec-verify")
            .args(["-o", origin])
            .arg(zone_file),
    );
    assert!(ok, "dnssec-verify rejected {}: {text}", zone_file.display());
    let (ok, text) = run_validator(
        Command::new("named-checkzone")
            .args(["-i", "full", "-k", "fail", "-n", "fail", "-M", "fail"])
            .arg(origin)
            .arg(zone_file),
    );
    assert!(
        ok,
        "named-checkzone rejected {}: {text}",
        zone_file.display()
    );
    let (ok, text) = run_validator(
        Command::new("kzonecheck")
            .args(["--origin", origin, "--dnssec", "on"])
            .arg(zone_file),
    );
    assert!(ok, "kzonecheck rejected {}: {text}", zone_file.display());
}

/// The records of a zone file as ldns-read-zone prints them in canonical
/// form (lower case, one per line, fields separated by single spaces).
pub fn canonical_records(zone_file: &Path) -> Vec<String> {
    let out = Command::new("ldns-read-zone")
        .arg("-c")
        .arg(zone_file)
        .output()
        .expect("ldns-read-zone");
    assert!(
        out.status.success(),
        "ldns-read-zone {}: {}",
        zone_file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// Every record of the unsigned input is in the signed output, but for
/// the DNSSEC records the signer makes itself (RRSIG, NSEC, NSEC3,
/// NSEC3PARAM, and the apex DNSKEY, CDS and CDNSKEY).
pub fn assert_keeps_every_record(input: &Path, signed: &Path, origin: &str) {
    let apex = format!("{}.", origin.trim_end_matches('.').to_ascii_lowercase());
    let signer_made = |r: &String| {
        let f: Vec<&str> = r.split(' ').collect();
        matches!(f[3], "RRSIG" | "NSEC" | "NSEC3" | "NSEC3PARAM")
            || (f[0] == apex && matches!(f[3], "DNSKEY" | "CDS" | "CDNSKEY"))
    };
    let out: std::collections::HashSet<String> = canonical_records(signed).into_iter().collect();
    let lost: Vec<String> = canonical_records(input)
        .into_iter()
        .filter(|r| !signer_made(r) && !out.contains(r))
        .collect();
    assert!(
        lost.is_empty(),
        "the signed zone {} lacks records of its input: {lost:#?}",
        signed.display()
    );
}

/// Reads a zone with ldns-read-zone and counts records of a type.
pub fn count_type(zone_file: &Path, rtype: &str) -> usize {
    let out = Command::new("ldns-read-zone")
        .arg(zone_file)
        .output()
        .expect("ldns-read-zone");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.split_whitespace().nth(3) == Some(rtype))
        .count()
}

/// A port free on 127.0.0.1 at the time of asking, for a process a test
/// starts to bind. Chosen below the kernel's ephemeral range (read from
/// /proc): the kernel hands those out to every `:0` listener and outgoing
/// connection of the many processes the tests run at once, so a port taken
/// from it could be gone by the time etcd or Knot binds it. Below it only
/// these tests choose, and never the same port twice.
pub fn free_port() -> u16 {
    static NEXT: std::sync::Mutex<Option<u16>> = std::sync::Mutex::new(None);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    // A range of its own per run (by process id), so that two test runs
    // at once rarely meet.
    let base = 10_000u16;
    let span = low.saturating_sub(base).max(1000);
    let mut next = NEXT.lock().unwrap_or_else(|p| p.into_inner());
    let mut port = next.unwrap_or(base + (std::process::id() % u32::from(span)) as u16);
    loop {
        port = if port + 1 >= base + span {
            base
        } else {
            port + 1
        };
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            *next = Some(port);
            return port;
        }
    }
}

/// A one-member etcd cluster (Debian's `etcd`) on 127.0.0.1 with its data
/// in a temporary directory; stopped by PID when dropped. Missing etcd is a
/// failure, never a skip.
pub struct Etcd {
    pub child: Option<Child>,
    pub dir: TempDir,
    pub client_url: String,
    peer_url: String,
    /// Plain HTTP, for /health also when clients must use TLS.
    metrics_url: String,
    /// With TLS: etcd's certificate and key, and the CA it checks client
    /// certificates against; and what a keymaster node uses to connect.
    server_tls: Option<(ClientCert, PathBuf)>,
    pub client_tls: Option<keymaster::store::StoreTls>,
    /// The PKI those files are in, kept for the life of the etcd.
    pki: Option<Pki>,
    log: PathBuf,
    /// The member's name and the cluster's members (`--initial-cluster`);
    /// a one-member cluster by default.
    member: String,
    cluster: Option<String>,
}

impl Etcd {
    pub fn start(name: &str) -> Etcd {
        Self::start_with(name, None)
    }

    /// etcd serving its clients over TLS only, requiring a client
    /// certificate from the PKI's CA.
    pub fn start_tls(name: &str) -> Etcd {
        let pki = Pki::new();
        let server = pki.issue("etcd-server", &["127.0.0.1", "localhost"], None, false);
        let client = pki.issue("etcd-client", &[NODE_NAME], None, false);
        let mut e = Self::start_with(name, Some((server, pki.ca_pem.clone())));
        e.client_tls = Some(keymaster::store::StoreTls {
            ca: pki.ca_pem.clone(),
            identity: Some((client.cert, client.key)),
        });
        e.pki = Some(pki);
        e
    }

    fn start_with(name: &str, server_tls: Option<(ClientCert, PathBuf)>) -> Etcd {
        let dir = TempDir::new(&format!("etcd-{name}"));
        let scheme = if server_tls.is_some() {
            "https"
        } else {
            "http"
        };
        let mut e = Etcd {
            child: None,
            client_url: format!("{scheme}://127.0.0.1:{}", free_port()),
            peer_url: format!("http://127.0.0.1:{}", free_port()),
            metrics_url: format!("http://127.0.0.1:{}", free_port()),
            server_tls,
            client_tls: None,
            pki: None,
            log: dir.path().join("etcd.log"),
            dir,
            member: "km-test".into(),
            cluster: None,
        };
        e.run();
        e
    }

    /// The `--store` value for keymasterd.
    pub fn store(&self) -> String {
        format!("etcd:{}", self.client_url)
    }

    /// Starts (or restarts, on the same data and ports) the etcd process
    /// and waits until it reports itself healthy.
    pub fn run(&mut self) {
        self.spawn();
        self.wait_healthy();
    }

    /// Starts the etcd process, without waiting.
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("etcd log");
        let mut cmd = Command::new("etcd");
        if let Some((server, ca)) = &self.server_tls {
            cmd.arg("--cert-file")
                .arg(&server.cert)
                .arg("--key-file")
                .arg(&server.key)
                .arg("--trusted-ca-file")
                .arg(ca)
                .arg("--client-cert-auth");
        }
        let child = cmd
            .args(["--name", &self.member])
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(["--listen-client-urls", &self.client_url])
            .args(["--advertise-client-urls", &self.client_url])
            .args(["--listen-peer-urls", &self.peer_url])
            .args(["--listen-metrics-urls", &self.metrics_url])
            .args(["--initial-advertise-peer-urls", &self.peer_url])
            .arg("--initial-cluster")
            .arg(
                self.cluster
                    .clone()
                    .unwrap_or_else(|| format!("{}={}", self.member, self.peer_url)),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd (Debian package etcd-server)");
        self.child = Some(child);
    }

    /// Waits until the member reports itself healthy (in a cluster: has a
    /// leader, so a quorum is up).
    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.healthy() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "etcd exited with {status}: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "etcd did not become healthy");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// etcd's own health endpoint says it has a leader and serves.
    fn healthy(&self) -> bool {
        use std::io::{Read, Write};
        let addr = self.metrics_url.trim_start_matches("http://");
        let Ok(mut s) = std::net::TcpStream::connect(addr) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(format!("GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .is_err()
        {
            return false;
        }
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.contains("\"health\":\"true\"")
    }

    /// kill -9, and wait for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_pid(child.id(), "KILL");
            let _ = child.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A three-member etcd cluster on 127.0.0.1, each member a process of its
/// own (stopped by PID when dropped).
pub struct EtcdCluster {
    pub members: Vec<Etcd>,
}

impl EtcdCluster {
    pub fn start(name: &str) -> EtcdCluster {
        let mut members: Vec<Etcd> = (0..3)
            .map(|i| {
                let dir = TempDir::new(&format!("etcd-{name}-{i}"));
                Etcd {
                    child: None,
                    client_url: format!("http://127.0.0.1:{}", free_port()),
                    peer_url: format!("http://127.0.0.1:{}", free_port()),
                    metrics_url: format!("http://127.0.0.1:{}", free_port()),
                    server_tls: None,
                    client_tls: None,
                    pki: None,
                    log: dir.path().join("etcd.log"),
                    dir,
                    member: format!("m{i}"),
                    cluster: None,
                }
            })
            .collect();
        let cluster = members
            .iter()
            .map(|m| format!("{}={}", m.member, m.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        for m in &mut members {
            m.cluster = Some(cluster.clone());
            m.spawn();
        }
        for m in &mut members {
            m.wait_healthy();
        }
        EtcdCluster { members }
    }

    /// Starts every member that is not running (all at once: one alone
    /// has no quorum to become healthy with), and waits for them.
    pub fn run_all(&mut self) {
        for m in &mut self.members {
            if m.child.is_none() {
                m.spawn();
            }
        }
        for m in &mut self.members {
            m.wait_healthy();
        }
    }

    /// The `--store` value naming every member.
    pub fn store(&self) -> String {
        let urls: Vec<&str> = self.members.iter().map(|m| m.client_url.as_str()).collect();
        format!("etcd:{}", urls.join(","))
    }
}

/// The store a test's nodes share: an embedded SQLite file, or a real etcd.
pub enum TestStore {
    Sqlite(TempDir),
    Etcd(Box<Etcd>),
}

impl TestStore {
    pub fn sqlite(name: &str) -> TestStore {
        TestStore::Sqlite(TempDir::new(&format!("store-{name}")))
    }

    pub fn etcd(name: &str) -> TestStore {
        TestStore::Etcd(Box::new(Etcd::start(name)))
    }

    /// etcd over mutual TLS.
    pub fn etcd_tls(name: &str) -> TestStore {
        TestStore::Etcd(Box::new(Etcd::start_tls(name)))
    }

    /// How a node opens it, beyond the URL.
    pub fn options(&self) -> keymaster::store::StoreOptions {
        keymaster::store::StoreOptions {
            audit_file: None,
            start_unreachable: false,
            tls: match self {
                TestStore::Etcd(etcd) => etcd.client_tls.clone(),
                TestStore::Sqlite(_) => None,
            },
        }
    }

    /// Pauses a node (SIGSTOP) at a moment it holds no SQLite write lock.
    /// A node stopped inside a write keeps the database's one write lock
    /// until it is resumed, and every other node's writes (their lease
    /// renewals too) wait for it: that is how SQLite treats a stalled
    /// writer (etcd has no such lock), not what pausing a node tests.
    pub fn pause_node(&self, pid: u32) {
        let TestStore::Sqlite(_) = self else {
            return signal_pid(pid, "STOP");
        };
        let path = self.url().trim_start_matches("sqlite:").to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            signal_pid(pid, "STOP");
            let db = rusqlite::Connection::open(&path).unwrap();
            db.busy_timeout(Duration::from_millis(500)).unwrap();
            if db.execute_batch("BEGIN IMMEDIATE; ROLLBACK").is_ok() {
                return;
            }
            signal_pid(pid, "CONT");
            assert!(
                Instant::now() < deadline,
                "node {pid} was inside a write each time it was paused"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The `--store` value.
    pub fn url(&self) -> String {
        match self {
            TestStore::Sqlite(dir) => {
                format!("sqlite:{}", dir.path().join("keymaster.db").display())
            }
            TestStore::Etcd(etcd) => etcd.store(),
        }
    }
}

/// GET `path` from `addr` over HTTP/1.1: (status line, headers in lower
/// case, body).
pub fn http_get(addr: &str, path: &str, accept: Option<&str>) -> (String, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("the listener accepts");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("an answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_lowercase(), body.to_string())
}

/// keymasterd's metrics, scraped from its `--metrics-listen` address.
pub fn scrape_metrics(addr: &str) -> String {
    let (status, _, body) = http_get(addr, "/metrics", None);
    assert!(status.contains(" 200 "), "{status}");
    body
}

/// The value of the metrics sample `series` (name and labels exactly as
/// served).
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}
