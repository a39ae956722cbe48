//! Real DNS servers for the tests: Knot DNS serving zone files that
//! keymaster signed, and Unbound validating what Knot serves from a trust
//! anchor. Both listen on 127.0.0.1 on ports chosen at run time and are
//! stopped by PID when dropped. Missing packages are a failure, never a
//! skip.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, signal_pid, TempDir};

/// knotd serving the given zones from `DIR/ZONE.zone`, signed elsewhere.
pub struct Knot {
    child: Option<Child>,
    pub dir: TempDir,
    pub port: u16,
    conf: PathBuf,
}

impl Knot {
    pub fn start(zones: &[&str]) -> Knot {
        Self::start_with(zones, &[], None, None)
    }

    /// knotd as the primary of unsigned zones that keymaster pulls: it
    /// allows transfers from 127.0.0.0/8 and sends NOTIFY to `notify`
    /// (keymaster's DNS address) when a zone changes.
    pub fn start_primary(zones: &[&str], notify: &str) -> Knot {
        Self::start_with(zones, &[], None, Some(notify))
    }

    /// knotd as a secondary of the given primaries (keymaster's DNS
    /// addresses, in order): it transfers the zones from them, takes their
    /// NOTIFYs, and keeps nothing on disk between runs.
    pub fn start_secondary(zones: &[&str], primaries: &[String]) -> Knot {
        Self::start_with(zones, primaries, None, None)
    }

    /// A secondary that signs its transfer requests with a TSIG key
    /// (name, hmac-sha256 secret in base64).
    pub fn start_secondary_tsig(zones: &[&str], primaries: &[String], key: (&str, &str)) -> Knot {
        Self::start_with(zones, primaries, Some(key), None)
    }

    /// A primary that keeps a journal of its zone files' changes (each
    /// reload's difference from the last), so that it answers IXFR.
    pub fn start_primary_ixfr(zones: &[&str], notify: &str) -> Knot {
        let k = Self::start_with(zones, &[], None, Some(notify));
        let conf = std::fs::read_to_string(&k.conf)
            .unwrap()
            .replace(
                "    journal-content: none\n",
                "    journal-content: changes\n",
            )
            .replace(
                "    zonefile-load: whole\n",
                "    zonefile-load: difference\n",
            );
        std::fs::write(&k.conf, conf).unwrap();
        std::fs::create_dir_all(k.dir.path().join("db")).unwrap();
        k.ctl(&["reload"]);
        k
    }

    /// A primary that serves its zones only to transfers signed with this
    /// TSIG key (name, hmac-sha256 secret in base64), and notifies `notify`.
    pub fn start_primary_tsig(zones: &[&str], notify: &str, key: (&str, &str)) -> Knot {
        Self::start_with(zones, &[], Some(key), Some(notify))
    }

    fn start_with(
        zones: &[&str],
        primaries: &[String],
        key: Option<(&str, &str)>,
        notify: Option<&str>,
    ) -> Knot {
        let dir = TempDir::new("knot");
        let port = free_port();
        let conf = dir.path().join("knot.conf");
        let d = dir.path().display();
        let mut text = format!(
            "server:\n    listen: 127.0.0.1@{port}\n    rundir: {d}\n\
             control:\n    listen: {d}/knot.sock\n\
             database:\n    storage: {d}/db\n\
             log:\n  - target: stderr\n    any: info\n"
        );
        if let Some((name, secret)) = key {
            text.push_str(&format!(
                "key:\n  - id: {name}\n    algorithm: hmac-sha256\n    secret: {secret}\n"
            ));
        }
        if !primaries.is_empty() {
            text.push_str("remote:\n");
            for (i, p) in primaries.iter().enumerate() {
                text.push_str(&format!(
                    "  - id: km{i}\n    address: {}\n",
                    p.replace(':', "@")
                ));
                if let Some((name, _)) = key {
                    text.push_str(&format!("    key: {name}\n"));
                }
            }
            text.push_str("acl:\n  - id: notify\n    address: 127.0.0.0/8\n    action: notify\n");
        }
        if let Some(to) = notify {
            text.push_str(&format!(
                "remote:\n  - id: signer\n    address: {}\n\
                 acl:\n  - id: xfr\n    address: 127.0.0.0/8\n    action: transfer\n",
                to.replace(':', "@")
            ));
            if let Some((name, _)) = key {
                text.push_str(&format!("    key: {name}\n"));
            }
        }
        text.push_str(&format!(
            "template:\n  - id: default\n    storage: {d}\n    file: \"%s.zone\"\n\
             \x20   zonefile-sync: -1\n    zonefile-load: whole\n    journal-content: none\n\
             \x20   semantic-checks: on\n"
        ));
        if !primaries.is_empty() {
            let ids: Vec<String> = (0..primaries.len()).map(|i| format!("km{i}")).collect();
            text.push_str(&format!(
                "    master: [{}]\n    acl: notify\n    zonefile-load: none\n",
                ids.join(", ")
            ));
            text = text.replace("    zonefile-load: whole\n", "");
        }
        if notify.is_some() {
            text.push_str("    notify: signer\n    acl: xfr\n");
        }
        text.push_str("zone:\n");
        for z in zones {
            text.push_str(&format!("  - domain: {z}\n"));
        }
        std::fs::write(&conf, text).unwrap();
        let log = std::fs::File::create(dir.path().join("knotd.log")).unwrap();
        let child = Command::new("knotd")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start knotd (Debian package knot)");
        let k = Knot {
            child: Some(child),
            dir,
            port,
            conf,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !k.dir.path().join("knot.sock").exists() {
            assert!(
                Instant::now() < deadline,
                "knotd did not start: {}",
                k.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        k
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("knotd.log")).unwrap_or_default()
    }

    /// knotd as the signer of its own zone, with keys of its own (an
    /// operator keymaster knows nothing of): ECDSA P-256, TTLs of 2 s, a
    /// KSK rolled only on `knotc zone-key-rollover`, and CDS/CDNSKEY
    /// always published for the KSK the parent should have; anyone on
    /// loopback may transfer the zone.
    pub fn start_signing(zone: &str, text: &str) -> Knot {
        Self::start_signing_with(zone, text, None)
    }

    /// The same, also taking DNS UPDATEs (RFC 2136) of its zone signed
    /// with this TSIG key (name, hmac-sha256 secret in base64) from
    /// loopback, which it applies and signs: a parent a DS is pushed to.
    pub fn start_signing_updatable(zone: &str, text: &str, key: (&str, &str)) -> Knot {
        Self::start_signing_with(zone, text, Some(key))
    }

    fn start_signing_with(zone: &str, text: &str, update: Option<(&str, &str)>) -> Knot {
        let k = Self::start_with(&[], &[], update, None);
        std::fs::write(k.zone_file(zone), text).unwrap();
        // Where knotd keeps its keys (the KASP database).
        std::fs::create_dir_all(k.dir.path().join("db")).unwrap();
        let mut conf = std::fs::read_to_string(&k.conf).unwrap();
        conf = conf.replace(
            "    journal-content: none\n",
            "    journal-content: changes\n",
        );
        let (update_acl, acls) = match update {
            Some((name, _)) => (
                format!(
                    "  - id: update\n    address: 127.0.0.0/8\n    key: {name}\n    action: update\n"
                ),
                "copy, update",
            ),
            None => (String::new(), "copy"),
        };
        // A policy is defined before the zone that names it.
        conf = conf.replace(
            "zone:\n",
            &format!(
                "policy:\n  - id: fast\n    algorithm: ecdsap256sha256\n    ksk-lifetime: 0\n\
                 \x20   zsk-lifetime: 0\n    dnskey-ttl: 2\n    zone-max-ttl: 2\n\
                 \x20   propagation-delay: 1\n    cds-cdnskey-publish: always\n\
                 acl:\n  - id: copy\n    address: 127.0.0.0/8\n    action: transfer\n{update_acl}\
                 zone:\n  - domain: {zone}\n    dnssec-signing: on\n    dnssec-policy: fast\n\
                 \x20   acl: [{acls}]\n"
            ),
        );
        std::fs::write(&k.conf, conf).unwrap();
        k.ctl(&["reload"]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while soa_serial(&k.addr(), zone).is_none() {
            assert!(
                Instant::now() < deadline,
                "knotd does not serve {zone}: {}",
                k.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        k
    }

    /// Has knotd send NOTIFY to `addr` too when its zones change (a
    /// secondary started after it).
    pub fn notify_also(&self, addr: &str) {
        let conf = std::fs::read_to_string(&self.conf).unwrap();
        let conf = format!(
            "remote:\n  - id: also\n    address: {}\n{conf}",
            addr.replace(':', "@")
        )
        .replace(
            "    dnssec-policy: fast\n",
            "    dnssec-policy: fast\n    notify: also\n",
        );
        std::fs::write(&self.conf, conf).unwrap();
        self.ctl(&["reload"]);
    }

    /// Runs `knotc` against this knotd; its output, or a failure.
    pub fn ctl(&self, args: &[&str]) -> String {
        let out = Command::new("knotc")
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .output()
            .expect("knotc");
        assert!(
            out.status.success(),
            "knotc {args:?}: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Where knotd reads the zone from.
    pub fn zone_file(&self, zone: &str) -> PathBuf {
        self.dir
            .path()
            .join(format!("{}.zone", zone.trim_end_matches('.')))
    }

    /// Puts a signed zone in place and has knotd load it; returns once
    /// knotd serves its SOA serial.
    pub fn publish(&self, zone: &str, signed: &Path, serial: u32) {
        let target = self.zone_file(zone);
        let tmp = target.with_extension("tmp");
        std::fs::copy(signed, &tmp).unwrap();
        std::fs::rename(&tmp, &target).unwrap();
        // The zone may not be loaded yet (first publication): reload all.
        let out = Command::new("knotc")
            .arg("-c")
            .arg(&self.conf)
            .arg("zone-reload")
            .arg(zone)
            .output()
            .expect("knotc");
        assert!(
            out.status.success(),
            "knotc zone-reload {zone}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if soa_serial(&self.addr(), zone) == Some(serial) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "knotd does not serve serial {serial} of {zone}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Knot {
    /// Waits until knotd serves the zone at `serial` or later (RFC 1982).
    pub fn wait_for_serial(&self, zone: &str, serial: u32, within: Duration) {
        wait_for_serial("knotd", &self.addr(), zone, serial, within, &|| self.log());
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal_pid(c.id(), "KILL");
            let _ = c.wait();
        }
    }
}

/// NSD as a secondary of keymaster: it transfers the zones from the
/// primary (IXFR once it has a version, else AXFR) and takes its NOTIFYs;
/// nothing of it outlives the test.
pub struct Nsd {
    child: Option<Child>,
    pub dir: TempDir,
    pub port: u16,
}

impl Nsd {
    pub fn start_secondary(zones: &[&str], primary: &str) -> Nsd {
        Self::secondary(zones, primary, None)
    }

    /// A secondary that signs its transfer requests with a TSIG key (name,
    /// hmac-sha256 secret in base64) and checks every message of each
    /// answer against it.
    pub fn start_secondary_tsig(zones: &[&str], primary: &str, key: (&str, &str)) -> Nsd {
        Self::secondary(zones, primary, Some(key))
    }

    fn secondary(zones: &[&str], primary: &str, key: Option<(&str, &str)>) -> Nsd {
        let primary = primary.replace(':', "@");
        let mut lines = String::new();
        if let Some((name, secret)) = key {
            lines.push_str(&format!(
                "key:\n  name: \"{name}\"\n  algorithm: hmac-sha256\n  secret: \"{secret}\"\n"
            ));
        }
        let key_name = key.map_or("NOKEY", |(name, _)| name);
        for z in zones {
            lines.push_str(&format!(
                "zone:\n  name: \"{z}\"\n  zonefile: \"{}.zone\"\n  request-xfr: {primary} {key_name}\n\
                 \x20 allow-notify: 127.0.0.1 NOKEY\n",
                z.trim_end_matches('.')
            ));
        }
        Self::start_with(&lines, &[])
    }

    /// NSD serving a zone from this text as it is (a copy of another
    /// server's zone, say, changed on purpose).
    pub fn start_primary(zone: &str, text: &str) -> Nsd {
        let file = format!("{}.zone", zone.trim_end_matches('.'));
        let zone_lines = format!("zone:\n  name: \"{zone}\"\n  zonefile: \"{file}\"\n");
        Self::start_with(&zone_lines, &[(&file, text)])
    }

    fn start_with(zone_lines: &str, files: &[(&str, &str)]) -> Nsd {
        let dir = TempDir::new("nsd");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let port = free_port();
        let d = dir.path().display();
        let mut text = format!(
            "server:\n  ip-address: 127.0.0.1@{port}\n  zonesdir: \"{d}\"\n  database: \"\"\n\
             \x20 pidfile: \"{d}/nsd.pid\"\n  xfrdfile: \"{d}/xfrd.state\"\n\
             \x20 zonelistfile: \"{d}/zone.list\"\n  xfrdir: \"{d}\"\n  username: \"\"\n\
             \x20 chroot: \"\"\n  logfile: \"{d}/nsd.log\"\n  verbosity: 2\n  server-count: 1\n\
             remote-control:\n  control-enable: no\n"
        );
        text.push_str(zone_lines);
        let conf = dir.path().join("nsd.conf");
        std::fs::write(&conf, text).unwrap();
        let child = Command::new("nsd")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("nsd.err")).unwrap())
            .spawn()
            .expect("start nsd (Debian package nsd)");
        Nsd {
            child: Some(child),
            dir,
            port,
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        format!(
            "{}{}",
            std::fs::read_to_string(self.dir.path().join("nsd.log")).unwrap_or_default(),
            std::fs::read_to_string(self.dir.path().join("nsd.err")).unwrap_or_default()
        )
    }

    /// Waits until NSD serves the zone at `serial` or later (RFC 1982).
    pub fn wait_for_serial(&self, zone: &str, serial: u32, within: Duration) {
        wait_for_serial("nsd", &self.addr(), zone, serial, within, &|| self.log());
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal_pid(c.id(), "KILL");
            let _ = c.wait();
        }
    }
}

/// Waits until a server serves the zone at `serial` or later (RFC 1982);
/// fails with the server's log.
fn wait_for_serial(
    what: &str,
    server: &str,
    zone: &str,
    serial: u32,
    within: Duration,
    log: &dyn Fn() -> String,
) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = soa_serial(server, zone) {
            if keymaster::dnssec::serial::at_least(s, serial) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{what} does not serve serial {serial} of {zone} within {within:?} (serves {:?}): {}",
            soa_serial(server, zone),
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The SOA serial a server answers for a zone (dig is not needed: a
/// query by the `domain` client).
pub fn soa_serial(server: &str, zone: &str) -> Option<u32> {
    let answer = ask(server, zone, domain::base::iana::Rtype::SOA, false).ok()?;
    let section = answer.answer().ok()?;
    section
        .limit_to::<domain::rdata::Soa<domain::base::ParsedName<bytes::Bytes>>>()
        .flatten()
        .map(|r| r.data().serial().into_int())
        .next()
}

/// One query, RD set or not, DO set; the whole answer.
pub fn ask(
    server: &str,
    qname: &str,
    qtype: domain::base::iana::Rtype,
    recursion: bool,
) -> Result<domain::base::Message<bytes::Bytes>, String> {
    use domain::net::client::protocol::UdpConnect;
    use domain::net::client::request::{ComposeRequest, RequestMessage, SendRequest};
    let server: SocketAddr = server.parse().unwrap();
    let name: domain::base::Name<Vec<u8>> = qname.parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut msg = domain::base::MessageBuilder::new_vec();
        msg.header_mut().set_rd(recursion);
        msg.header_mut().set_random_id();
        let mut msg = msg.question();
        msg.push((&name, qtype)).unwrap();
        let mut req = RequestMessage::new(msg).map_err(|e| e.to_string())?;
        req.set_dnssec_ok(true);
        let mut config = domain::net::client::dgram::Config::new();
        config.set_read_timeout(Duration::from_secs(2));
        let conn =
            domain::net::client::dgram::Connection::with_config(UdpConnect::new(server), config);
        conn.send_request(req)
            .get_response()
            .await
            .map_err(|e| e.to_string())
    })
}

/// The record data a server answers, in presentation form ("TAG ALG DT
/// HEX" for DS and CDS, "FLAGS ..." for DNSKEY), sorted.
pub fn served(server: &str, name: &str, rtype: domain::base::iana::Rtype) -> Vec<String> {
    let answer = ask(server, name, rtype, false).unwrap();
    let mut out: Vec<String> = answer
        .answer()
        .unwrap()
        .limit_to::<domain::rdata::ZoneRecordData<_, domain::base::ParsedName<_>>>()
        .flatten()
        .filter(|r| r.rtype() == rtype)
        .map(|r| {
            let text = r.data().to_string();
            match rtype {
                // The digest in one upper-case run, as keymaster writes it.
                domain::base::iana::Rtype::DS | domain::base::iana::Rtype::CDS => {
                    let f: Vec<&str> = text.split_whitespace().collect();
                    format!(
                        "{} {} {} {}",
                        f[0],
                        f[1],
                        f[2],
                        f[3..].concat().to_uppercase()
                    )
                }
                _ => text,
            }
        })
        .collect();
    out.sort();
    out
}

/// Unbound validating, with stub zones to Knot and a trust anchor.
pub struct Unbound {
    child: Option<Child>,
    pub dir: TempDir,
    pub port: u16,
}

impl Unbound {
    /// `stubs`: zone → server; `anchors`: DS or DNSKEY records in
    /// presentation format.
    pub fn start(stubs: &[(&str, String)], anchors: &[String]) -> Unbound {
        let lines: String = anchors
            .iter()
            .map(|a| format!("  trust-anchor: \"{}\"\n", a.replace('\t', " ")))
            .collect();
        Self::start_with(stubs, &lines)
    }

    /// A validator that forgives nothing a careless roll gets wrong: it
    /// does not fetch keys again when validation fails
    /// (`val-max-restart: 0`; a stock Unbound retries past a key that is
    /// missing from its cache), allows no clock skew on signatures, and
    /// forgets a bogus answer after a second (so that it sees the zone
    /// heal). Run beside a stock one.
    pub fn strict(stubs: &[(&str, String)], anchors: &[String]) -> Unbound {
        let mut lines: String = anchors
            .iter()
            .map(|a| format!("trust-anchor: \"{}\"\n", a.replace('\t', " ")))
            .collect();
        lines.push_str(STRICT);
        Self::start_with(stubs, &lines)
    }

    /// As `start`, with `trust`: lines of the server: section that give
    /// the trust anchors (`trust-anchor:`, `trust-anchor-file:`), as an
    /// operator would paste them.
    pub fn start_with(stubs: &[(&str, String)], trust: &str) -> Unbound {
        let dir = TempDir::new("unbound");
        let port = free_port();
        let d = dir.path().display();
        let mut text = format!(
            "server:\n  interface: 127.0.0.1\n  port: {port}\n  do-not-query-localhost: no\n\
             \x20 use-syslog: no\n  logfile: \"{d}/unbound.log\"\n  chroot: \"\"\n  username: \"\"\n\
             \x20 directory: \"{d}\"\n  pidfile: \"\"\n  verbosity: 1\n  val-log-level: 2\n\
             \x20 module-config: \"validator iterator\"\n  qname-minimisation: no\n\
             \x20 aggressive-nsec: no\n  prefetch: no\n  do-ip6: no\n"
        );
        for (zone, _) in stubs {
            text.push_str(&format!("  local-zone: \"{zone}\" nodefault\n"));
        }
        // Unbound answers test. itself (RFC 6761) unless told not to.
        if !stubs.iter().any(|(z, _)| *z == "test.") {
            text.push_str("  local-zone: \"test.\" nodefault\n");
        }
        for line in trust.lines() {
            text.push_str(&format!("  {}\n", line.trim()));
        }
        for (zone, server) in stubs {
            text.push_str(&format!(
                "stub-zone:\n  name: \"{zone}\"\n  stub-addr: {}\n",
                server.replace(':', "@")
            ));
        }
        text.push_str("remote-control:\n  control-enable: no\n");
        let conf = dir.path().join("unbound.conf");
        std::fs::write(&conf, text).unwrap();
        let child = Command::new("unbound")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("unbound.err")).unwrap())
            .spawn()
            .expect("start unbound (Debian package unbound)");
        let u = Unbound {
            child: Some(child),
            dir,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while ask(&u.addr(), "test.", domain::base::iana::Rtype::SOA, true).is_err() {
            assert!(
                Instant::now() < deadline,
                "unbound did not start: {}",
                u.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        u
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        format!(
            "{}{}",
            std::fs::read_to_string(self.dir.path().join("unbound.log")).unwrap_or_default(),
            std::fs::read_to_string(self.dir.path().join("unbound.err")).unwrap_or_default()
        )
    }

    /// A validated answer: (rcode, AD bit).
    pub fn resolve(
        &self,
        name: &str,
        qtype: domain::base::iana::Rtype,
    ) -> Result<(String, bool), String> {
        let a = ask(&self.addr(), name, qtype, true)?;
        Ok((a.header().rcode().to_string(), a.header().ad()))
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal_pid(c.id(), "KILL");
            let _ = c.wait();
        }
    }
}

/// The validators of an end-to-end roll test: a stock Unbound and a
/// strict one (`Unbound::strict`), both anchored alike.
pub struct Validators {
    pub stock: std::sync::Arc<Unbound>,
    pub strict: std::sync::Arc<Unbound>,
    stubs: Vec<(String, String)>,
    trust: String,
}

impl Validators {
    /// `trust`: `trust-anchor:` lines as `keymasterctl trust-anchor
    /// --format unbound` prints them.
    pub fn start(stubs: &[(&str, String)], trust: &str) -> Validators {
        let strict_trust = format!("{trust}\n{STRICT}");
        Validators {
            stock: std::sync::Arc::new(Unbound::start_with(stubs, trust)),
            strict: std::sync::Arc::new(Unbound::start_with(stubs, &strict_trust)),
            stubs: stubs
                .iter()
                .map(|(z, s)| (z.to_string(), s.clone()))
                .collect(),
            trust: trust.to_string(),
        }
    }

    pub fn both(&self) -> Vec<std::sync::Arc<Unbound>> {
        vec![self.stock.clone(), self.strict.clone()]
    }

    /// A strict validator with nothing in its cache: a failed validation
    /// marks a zone's keys bad in Unbound's key cache for a while, so each
    /// control starts from a clean one.
    pub fn fresh_strict(&self) -> Unbound {
        let stubs: Vec<(&str, String)> = self
            .stubs
            .iter()
            .map(|(z, s)| (z.as_str(), s.clone()))
            .collect();
        Unbound::start_with(&stubs, &format!("{}\n{STRICT}", self.trust))
    }

    /// Waits until `name` validates (NOERROR, AD) through both.
    pub fn wait_validated(&self, name: &str, qtype: domain::base::iana::Rtype, secs: u64) {
        for u in self.both() {
            let deadline = Instant::now() + Duration::from_secs(secs);
            while u.resolve(name, qtype) != Ok(("NOERROR".into(), true)) {
                assert!(
                    Instant::now() < deadline,
                    "{name} does not validate: {}",
                    u.log()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    /// The control of an end-to-end roll test: keys swapped by hand
    /// without waiting (`set`, with `--force`) must make a strict validator
    /// fail on `name` within `secs`, else the set-up could not see a roll
    /// that does not wait. The swap is made right after the validator
    /// fetched `fresh` (its TTL at the full value), so that the record the
    /// swap outdates stays in its cache longer than what it must then
    /// validate: the failure is certain, not a matter of when the caches
    /// happened to expire. Then, once `settle` has passed (the longest
    /// TTL), the zone must validate again for a validator starting afresh.
    pub fn careless_swap_is_seen(
        &self,
        what: &str,
        name: &str,
        fresh: (&str, domain::base::iana::Rtype, u32),
        settle: Duration,
        set: impl FnOnce(),
    ) {
        use domain::base::iana::Rtype;
        let u = self.fresh_strict();
        let valid = |u: &Unbound| u.resolve(name, Rtype::A) == Ok(("NOERROR".into(), true));
        let wait = |what: &str, secs: u64, f: &dyn Fn() -> bool| {
            let deadline = Instant::now() + Duration::from_secs(secs);
            while !f() {
                assert!(
                    Instant::now() < deadline,
                    "control: {what}: not within {secs} s"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        };
        wait("the zone validates before the swap", 30, &|| valid(&u));
        let (owner, qtype, full) = fresh;
        wait("a fresh copy in the validator's cache", 30, &|| {
            ttl_in_cache(&u, owner, qtype).is_some_and(|t| t + 1 >= full)
        });
        set();
        let began = Instant::now();
        let mut seen = None;
        while began.elapsed() < Duration::from_secs(30) {
            if u.resolve(name, Rtype::A) == Ok(("SERVFAIL".into(), false)) {
                seen = Some(began.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let Some(after) = seen else {
            panic!(
                "control: {what} without waiting was not seen by the strict validator in 30 s\n{}",
                u.log()
            );
        };
        eprintln!("control: {what} without waiting: SERVFAIL after {after:?}");
        std::thread::sleep(settle);
        wait("the zone validates again after the control", 30, &|| {
            valid(&self.fresh_strict())
        });
    }
}

/// The strict validator's settings (`Unbound::strict`).
const STRICT: &str =
    "val-max-restart: 0\nval-sig-skew-min: 0\nval-sig-skew-max: 0\nval-bogus-ttl: 1\n";

/// The TTL left of an RRset in a validator's cache, as it answers.
pub fn ttl_in_cache(u: &Unbound, name: &str, qtype: domain::base::iana::Rtype) -> Option<u32> {
    let a = ask(&u.addr(), name, qtype, true).ok()?;
    let section = a.answer().ok()?;
    section
        .flatten()
        .find(|r| r.rtype() == qtype)
        .map(|r| r.ttl().as_secs())
}
