//! keymaster as the hidden signer secondaries pull from: a zone with a
//! source file is kept signed by its Key Master and served by zone
//! transfer to Knot DNS as secondary; Unbound validates what Knot serves
//! from the zone's DS. Changes of the source reach the secondary signed by
//! NOTIFY; a broken source changes nothing that is served; a stranger's
//! transfer is refused; after kill -9 of the Key Master and a seize, the
//! new holder serves the next serial and the secondary follows.

use std::time::{Duration, Instant};

use crate::common::dns::{soa_serial, Knot, Nsd, Unbound, Validators};
use crate::common::*;
use domain::base::iana::{Rcode, Rtype};

const ZONE: &str = "signed.test.";

/// TTLs of the test zone, seconds: short, so that Unbound's cache shows
/// a change within a few seconds.
fn source(serial: u32, extra: &str) -> String {
    format!(
        "$ORIGIN signed.test.\n$TTL 2\n@ SOA ns.signed.test. h.signed.test. {serial} 10 10 60 2\n\
         @ NS ns.signed.test.\nns A 127.0.0.1\n\
         child NS ns.child.signed.test.\nns.child A 192.0.2.53\n\
         alias CNAME www.signed.test.\n{extra}"
    )
}

fn ds_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.split_whitespace().nth(3) == Some("DS"))
        .map(str::to_string)
        .collect()
}

/// The answer through Unbound: (rcode, AD, the answer's A addresses).
fn resolve_a(u: &Unbound, name: &str) -> (Rcode, bool, Vec<String>) {
    let a = crate::common::dns::ask(&u.addr(), name, Rtype::A, true).expect("unbound answers");
    let mut addrs = Vec::new();
    if let Ok(section) = a.answer() {
        for r in section.limit_to::<domain::rdata::A>().flatten() {
            addrs.push(r.data().addr().to_string());
        }
    }
    (a.header().rcode(), a.header().ad(), addrs)
}

/// Waits until Unbound gives the expected answer, validated.
fn wait_validated(u: &Unbound, name: &str, rcode: Rcode, addrs: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (rc, ad, got) = resolve_a(u, name);
        if rc == rcode && ad && got == addrs {
            return;
        }
        assert!(
            rc != Rcode::SERVFAIL,
            "{name}: SERVFAIL (bogus): {}",
            u.log()
        );
        assert!(
            Instant::now() < deadline,
            "{name}: {rc} AD={ad} {got:?}, expected {rcode} AD {addrs:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn status(d: &Daemon) -> serde_json::Value {
    serde_json::from_str(&d.ctl_ok(&["zone", "status", ZONE, "--json"])).unwrap()
}

/// (RRSIGs published, of which made now) for a serial, from the audit log.
fn rrsigs_of(d: &Daemon, serial: u32) -> (u64, u64) {
    let audit = d.ctl_ok(&["audit", "--zone", ZONE]);
    let line = audit
        .lines()
        .find(|l| l.contains(&format!("published serial {serial} ")))
        .unwrap_or_else(|| panic!("no audit entry for serial {serial}: {audit}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "RRSIGs")
        .expect("RRSIGs in the entry");
    (
        words[at - 1].parse().unwrap(),
        words[at + 3].parse().unwrap(),
    )
}

/// A zone transfer asked from a given local address: the rcode of the
/// first answer message.
fn axfr_rcode_from(local: &str, server: &str) -> Rcode {
    use domain::base::{Message, MessageBuilder, Name};
    use std::str::FromStr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut msg = MessageBuilder::new_vec();
    msg.header_mut().set_random_id();
    let mut msg = msg.question();
    msg.push((Name::<Vec<u8>>::from_str(ZONE).unwrap(), Rtype::AXFR))
        .unwrap();
    let wire = msg.finish();
    let (local, server): (std::net::SocketAddr, std::net::SocketAddr) =
        (local.parse().unwrap(), server.parse().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(local).unwrap();
        let mut s = sock.connect(server).await.unwrap();
        s.write_all(&(wire.len() as u16).to_be_bytes())
            .await
            .unwrap();
        s.write_all(&wire).await.unwrap();
        let read = async {
            let len = s.read_u16().await.unwrap();
            let mut buf = vec![0u8; len as usize];
            s.read_exact(&mut buf).await.unwrap();
            Message::from_octets(buf).unwrap().header().rcode()
        };
        tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .expect("an answer to the AXFR")
    })
}

#[test]
fn a_secondary_follows_the_signer_and_every_answer_validates() {
    let token = TestToken::new("zsigner");
    let dns_port = free_port();
    let dns = format!("127.0.0.1:{dns_port}");
    let d = Daemon::start(&token, "node-a", &["--dns-listen", &dns]);
    d.ctl_ok(&["zone", "add", ZONE, "--denial", "nsec3"]);
    let knot = Knot::start_secondary(&[ZONE], std::slice::from_ref(&dns));
    let nsd = Nsd::start_secondary(&[ZONE], &dns);
    let dir = TempDir::new("zsigner-src");
    let src = dir.path().join("signed.test.zone");
    let out = dir.path().join("signed.test.signed");
    std::fs::write(&src, source(7, "www A 192.0.2.80\nold A 192.0.2.81\n")).unwrap();

    // A secondary keymaster does not know is refused at once, by name.
    let err = d.ctl_err(&[
        "zone",
        "source",
        ZONE,
        "--file",
        src.to_str().unwrap(),
        "--secondary",
        "knot",
    ]);
    assert!(err.contains("secondary \"knot\" is not ADDR:PORT"), "{err}");
    d.ctl_ok(&[
        "zone",
        "source",
        ZONE,
        "--file",
        src.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--secondary",
        &knot.addr(),
        "--secondary",
        &nsd.addr(),
    ]);
    // The first serial is the source's (increment keeps it when it is new).
    knot.wait_for_serial(ZONE, 7, Duration::from_secs(20));
    nsd.wait_for_serial(ZONE, 7, Duration::from_secs(20));
    assert_eq!(soa_serial(&knot.addr(), ZONE), Some(7));
    let s = status(&d);
    assert_eq!(s["Serial"], 7, "{s:#}");
    assert_eq!(s["LastError"], "", "{s:#}");
    assert_eq!(s["Secondaries"][0]["Serial"], 7, "{s:#}");
    assert_eq!(s["Secondaries"][0]["Behind"], false, "{s:#}");
    assert_eq!(s["Secondaries"][1]["Serial"], 7, "{s:#}");
    // The signed file written beside it validates with outside tools.
    assert_validates(&out, ZONE);

    let ds = ds_lines(&d.ctl_ok(&["ds", ZONE]));
    assert!(!ds.is_empty());
    let unbound = Unbound::start(&[(ZONE, knot.addr())], &ds);
    // A second resolver validates what NSD serves.
    let via_nsd = Unbound::start(&[(ZONE, nsd.addr())], &ds);
    for u in [&unbound, &via_nsd] {
        wait_validated(u, "www.signed.test.", Rcode::NOERROR, &["192.0.2.80"]);
        wait_validated(u, "alias.signed.test.", Rcode::NOERROR, &["192.0.2.80"]);
    }

    // Names added, changed and removed in the source reach the secondaries
    // signed, without a serial raised by hand (policy increment).
    std::fs::write(&src, source(7, "www A 192.0.2.90\nnew A 192.0.2.91\n")).unwrap();
    knot.wait_for_serial(ZONE, 8, Duration::from_secs(10));
    nsd.wait_for_serial(ZONE, 8, Duration::from_secs(10));
    for u in [&unbound, &via_nsd] {
        wait_validated(u, "www.signed.test.", Rcode::NOERROR, &["192.0.2.90"]);
        wait_validated(u, "new.signed.test.", Rcode::NOERROR, &["192.0.2.91"]);
        wait_validated(u, "old.signed.test.", Rcode::NXDOMAIN, &[]);
    }
    assert_eq!(status(&d)["Reason"], "the source changed");
    // Only the changed RRsets and those around them were signed again
    // (www changed, new and old came and went: their NSEC3 neighbours, the
    // SOA); the rest kept their signatures, and the whole still validates.
    // Both secondaries took the change by IXFR: only what changed.
    assert!(
        d.log_text()
            .lines()
            .filter(|l| l.contains("zone transfer (incremental)") && l.contains("serial=8"))
            .count()
            >= 2,
        "{}",
        d.log_text()
    );
    assert!(knot.log().contains("IXFR, incoming"), "{}", knot.log());
    let (all, made) = rrsigs_of(&d, 8);
    assert!(
        made < all / 2 && made > 0,
        "{made} of {all} RRSIGs made again"
    );
    assert_validates(&out, ZONE);

    // A broken source: the error names the line; the last good zone is
    // still what is served.
    std::fs::write(
        &src,
        source(9, "www A 192.0.2.90\nnew A 192.0.2.91\nbad A 300.1.2.3\n"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        let s = status(&d);
        let e = s["LastError"].as_str().unwrap().to_string();
        if !e.is_empty() {
            break e;
        }
        assert!(Instant::now() < deadline, "no error reported: {s:#}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        err.contains(&format!(
            "source file {}: zone file line 11:",
            src.display()
        )),
        "{err}"
    );
    assert_eq!(soa_serial(&dns, ZONE), Some(8));
    assert_eq!(soa_serial(&knot.addr(), ZONE), Some(8));
    assert!(d
        .log_text()
        .contains("the last good version is still served"));
    // Mended, it is published again.
    std::fs::write(&src, source(9, "www A 192.0.2.90\nnew A 192.0.2.92\n")).unwrap();
    knot.wait_for_serial(ZONE, 9, Duration::from_secs(10));
    wait_validated(
        &unbound,
        "new.signed.test.",
        Rcode::NOERROR,
        &["192.0.2.92"],
    );
    assert_eq!(status(&d)["LastError"], "");

    // A source that breaks a structural rule is refused, naming the owner
    // and the rule; the secondaries keep the last good version.
    let good = source(9, "www A 192.0.2.90\nnew A 192.0.2.92\n");
    let broken = [
        (
            good.replace("@ NS ns.signed.test.\n", ""),
            "signed.test.: no NS RRset at the zone apex",
        ),
        (
            format!("{good}alias TXT \"beside\"\n"),
            "alias.signed.test.: CNAME beside TXT data",
        ),
        (
            format!("{good}@ CNAME www.signed.test.\n"),
            "signed.test.: CNAME at the zone apex",
        ),
        (
            format!("{good}old DNAME elsewhere.test.\nx.old A 192.0.2.1\n"),
            "x.old.signed.test.: data below the DNAME at old.signed.test.",
        ),
        (
            format!("{good}www.child TXT \"occluded\"\n"),
            "www.child.signed.test.: TXT below the zone cut at child.signed.test.",
        ),
        (
            format!("{good}big 2147483648 A 192.0.2.1\n"),
            "big.signed.test. A: TTL 2147483648 is over 2^31 - 1",
        ),
    ];
    for (text, said) in &broken {
        let last_good = soa_serial(&dns, ZONE);
        knot.wait_for_serial(ZONE, last_good.unwrap(), Duration::from_secs(10));
        std::fs::write(&src, text).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = status(&d);
            let e = s["LastError"].as_str().unwrap().to_string();
            if e.contains(said) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not refused with {said:?}: {s:#}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(soa_serial(&dns, ZONE), last_good, "{said}");
        assert_eq!(soa_serial(&knot.addr(), ZONE), last_good, "{said}");
        // Mended each time, so that the next breakage is one of its own.
        std::fs::write(&src, &good).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while status(&d)["LastError"] != "" {
            assert!(Instant::now() < deadline, "{:#}", status(&d));
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert!(d
        .log_text()
        .lines()
        .any(|l| l.contains("the last good version is still served") && l.contains("serial=9")));

    // A transfer from an address that is not a secondary is refused; the
    // secondary's own address is served.
    assert_eq!(axfr_rcode_from("127.0.0.2:0", &dns), Rcode::REFUSED);
    assert_eq!(axfr_rcode_from("127.0.0.1:0", &dns), Rcode::NOERROR);
    assert!(d.log_text().contains("zone transfer refused"));

    // Every serial published is in the audit log with why.
    let audit = d.ctl_ok(&["audit", "--zone", ZONE]);
    for serial in [7, 8, 9] {
        assert!(
            audit.contains(&format!("published serial {serial} ")),
            "{audit}"
        );
    }
}

#[test]
fn after_kill_9_and_a_seize_the_new_key_master_serves_the_next_serial() {
    let token = TestToken::new("zsigner-seize");
    let pki = std::sync::Arc::new(Pki::new());
    let dir = TempDir::new("zsigner-seize-store");
    let store = format!("sqlite:{}", dir.path().join("keymaster.db").display());
    let (dns_a, dns_b) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let lease = ["--lease-secs", "2"];
    let mut a = Daemon::start_node(
        &token,
        "node-a",
        &store,
        &pki,
        &[&["--dns-listen", &dns_a][..], &lease[..]].concat(),
    );
    let b = Daemon::start_node(
        &token,
        "node-b",
        &store,
        &pki,
        &[&["--dns-listen", &dns_b][..], &lease[..]].concat(),
    );
    a.ctl_ok(&["zone", "add", ZONE]);
    let knot = Knot::start_secondary(&[ZONE], &[dns_a.clone(), dns_b.clone()]);
    let src_dir = TempDir::new("zsigner-seize-src");
    let src = src_dir.path().join("zone");
    std::fs::write(&src, source(100, "www A 192.0.2.80\n")).unwrap();
    a.ctl_ok(&[
        "zone",
        "source",
        ZONE,
        "--file",
        src.to_str().unwrap(),
        "--secondary",
        &knot.addr(),
        "--serial",
        "increment",
    ]);
    knot.wait_for_serial(ZONE, 100, Duration::from_secs(20));
    // node-b is not the Key Master: it serves nothing.
    assert_eq!(soa_serial(&dns_b, ZONE), None);
    let ds = ds_lines(&a.ctl_ok(&["ds", ZONE]));
    let unbound = Unbound::start(&[(ZONE, knot.addr())], &ds);
    wait_validated(
        &unbound,
        "www.signed.test.",
        Rcode::NOERROR,
        &["192.0.2.80"],
    );

    signal_pid(a.pid(), "KILL");
    a.stop();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = b.ctl(&["role", "seize", ZONE, "--to", "node-b"]);
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "seize refused: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // The source did not change, but the serial moves on: never the same
    // serial with other signatures, never backwards.
    knot.wait_for_serial(ZONE, 101, Duration::from_secs(20));
    assert_eq!(soa_serial(&dns_b, ZONE), Some(101));
    let s: serde_json::Value =
        serde_json::from_str(&b.ctl_ok(&["zone", "status", ZONE, "--json"])).unwrap();
    assert_eq!(s["KeyMasterServer"], "node-b", "{s:#}");
    assert!(
        s["Reason"]
            .as_str()
            .unwrap()
            .contains("serving as Key Master"),
        "{s:#}"
    );
    std::fs::write(&src, source(100, "www A 192.0.2.99\n")).unwrap();
    knot.wait_for_serial(ZONE, 102, Duration::from_secs(10));
    wait_validated(
        &unbound,
        "www.signed.test.",
        Rcode::NOERROR,
        &["192.0.2.99"],
    );
}

/// The test zone (serial 1, www A 192.0.2.80) as a source file, kept
/// signed by `d` for `knot` as its secondary; returns once Knot serves it.
/// The directory holding the file is returned, to live as long as the test.
fn serve_file_source(d: &Daemon, knot: &Knot, dir: &str) -> TempDir {
    let dir = TempDir::new(dir);
    d.keep_signed(ZONE, &dir, &source(1, "www A 192.0.2.80\n"), knot);
    dir
}

/// The zone's ZSK tags, from `key list`.
fn zsk_tags(d: &Daemon) -> Vec<u64> {
    let v: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["key", "list", ZONE, "--json"])).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|k| k["role"] == "zsk")
        .map(|k| k["key_tag"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_zsk_roll_reaches_the_secondary_with_no_one_signing_by_hand() {
    // Published, retired, removed: a new serial each time.
    zsk_roll_through_the_signer("zsigner-roll", "pre-publication", 4);
}

#[test]
fn a_double_signature_zsk_roll_reaches_the_secondary_too() {
    // Published and signing, then the old key removed.
    zsk_roll_through_the_signer("zsigner-roll2", "double-signature", 3);
}

fn zsk_roll_through_the_signer(name: &str, method: &str, serials: u64) {
    let token = TestToken::new(name);
    let dns = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(&token, "node-a", &["--dns-listen", &dns]);
    let knot = Knot::start_secondary(&[ZONE], std::slice::from_ref(&dns));
    d.ctl_ok(&[
        "zone",
        "add",
        ZONE,
        "--denial",
        "nsec",
        // The data's TTL is 2 s (the source's): the DNSKEY RRset's differs.
        "--dnskey-ttl",
        "4",
        "--propagation-time",
        "1",
        "--safety-margin",
        "1",
        "--max-zone-ttl",
        "4",
        "--ksk-lifetime",
        "off",
        "--zsk-lifetime",
        "off",
        "--zsk-method",
        method,
        "--publication-server",
        &knot.addr(),
    ]);
    let _src = serve_file_source(&d, &knot, "zsigner-roll-src");
    let trust: String = ds_lines(&d.ctl_ok(&["ds", ZONE]))
        .iter()
        .map(|a| format!("trust-anchor: \"{}\"\n", a.replace('\t', " ")))
        .collect();
    let validators = Validators::start(&[(ZONE, knot.addr())], &trust);
    for unbound in validators.both() {
        wait_validated(
            &unbound,
            "www.signed.test.",
            Rcode::NOERROR,
            &["192.0.2.80"],
        );
    }

    let old = zsk_tags(&d);
    assert_eq!(old.len(), 1);
    d.ctl_ok(&["key", "roll", ZONE, &old[0].to_string()]);
    // Every answer through Unbound stays validated while the roll's steps
    // reach the secondary by themselves.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut answers = 0;
    loop {
        for unbound in validators.both() {
            let (rc, ad, got) = resolve_a(&unbound, "www.signed.test.");
            assert!(
                rc == Rcode::NOERROR && ad && got == ["192.0.2.80"],
                "during the roll: {rc} AD={ad} {got:?}: {}",
                unbound.log()
            );
            answers += 1;
        }
        let now = zsk_tags(&d);
        if now.len() == 1 && now[0] != old[0] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the ZSK roll did not finish: {}",
            d.ctl_ok(&["zone", "show", ZONE])
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // A new serial for each step, by itself (the last one published
    // within the signer's next look).
    let deadline = Instant::now() + Duration::from_secs(10);
    let s = loop {
        let s = status(&d);
        if s["Serial"].as_u64().unwrap() >= serials {
            break s;
        }
        assert!(Instant::now() < deadline, "{s:#}");
        std::thread::sleep(Duration::from_millis(200));
    };
    // The last step withdraws the old ZSK: from the DNSKEY RRset alone
    // (pre-publication), or from the signers too (double signature).
    assert!(
        [
            "the published keys, the KSKs or the outputs changed",
            "the key set, the policy or the outputs changed"
        ]
        .contains(&s["Reason"].as_str().unwrap_or_default()),
        "{s:#}"
    );
    knot.wait_for_serial(
        ZONE,
        s["Serial"].as_u64().unwrap() as u32,
        Duration::from_secs(10),
    );
    wait_validated(
        &validators.strict,
        "www.signed.test.",
        Rcode::NOERROR,
        &["192.0.2.80"],
    );
    assert!(
        answers > 10,
        "only {answers} answers sampled during the roll"
    );
    // The control: a ZSK swapped by hand without waiting (forced) is
    // seen by the strict validator while it holds the DNSKEY RRset.
    let old = zsk_tags(&d)[0].to_string();
    validators.careless_swap_is_seen(
        "a ZSK swap",
        "www.signed.test.",
        (ZONE, Rtype::DNSKEY, 4),
        Duration::from_secs(4),
        || {
            d.ctl_ok(&["key", "add", ZONE, "--role", "zsk", "--activate"]);
            d.ctl_ok(&["key", "retire", ZONE, &old, "--force"]);
            d.ctl_ok(&["key", "remove", ZONE, &old, "--force"]);
        },
    );
}

#[test]
fn transfers_of_a_zone_with_a_tsig_key_must_be_signed_with_it() {
    const SECRET: &str = "zlCZbVJPIhobIs1gJNQfrsS3xCxxsR9pMUrGwG8OgG8=";
    const WRONG: &str = "Yk9mZkJ5T25lQnl0ZVRoaXNJc05vdFRoZUtleUF0QWxsIQ==";
    let token = TestToken::new("zsigner-tsig");
    let dir = TempDir::new("zsigner-tsig-src");
    let keys = dir.path().join("tsig.keys");
    std::fs::write(
        &keys,
        format!("# transfer keys\nxfr-key hmac-sha256 {SECRET}\n"),
    )
    .unwrap();
    let dns = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(
        &token,
        "node-a",
        &["--dns-listen", &dns, "--tsig-keys", keys.to_str().unwrap()],
    );
    d.ctl_ok(&["zone", "add", ZONE]);
    let good = Knot::start_secondary_tsig(&[ZONE], std::slice::from_ref(&dns), ("xfr-key", SECRET));
    let bad = Knot::start_secondary_tsig(&[ZONE], std::slice::from_ref(&dns), ("xfr-key", WRONG));
    let src = dir.path().join("zone");
    std::fs::write(&src, source(5, "www A 192.0.2.80\n")).unwrap();
    let src = src.to_str().unwrap();
    let (g, b) = (good.addr(), bad.addr());
    let args = [
        "zone",
        "source",
        ZONE,
        "--file",
        src,
        "--secondary",
        &g,
        "--secondary",
        &b,
    ];
    // A key the Key Master does not have is refused by name.
    let err = d.ctl_err(&[&args[..], &["--tsig", "other-key"]].concat());
    assert!(
        err.contains("TSIG key \"other-key\" is not in the --tsig-keys file of node node-a"),
        "{err}"
    );
    d.ctl_ok(&[&args[..], &["--tsig", "xfr-key"]].concat());
    good.wait_for_serial(ZONE, 5, Duration::from_secs(20));
    assert_eq!(status(&d)["TsigKey"], "xfr-key.");
    // From a secondary's address but unsigned: refused.
    assert_eq!(axfr_rcode_from("127.0.0.1:0", &dns), Rcode::REFUSED);
    assert!(d
        .log_text()
        .contains("zone transfer refused: not signed with the zone's TSIG key xfr-key."));
    // Signed with the wrong secret: refused by the TSIG check, named in the
    // log; the other secondary is not affected.
    let deadline = Instant::now() + Duration::from_secs(10);
    // Logged as answered: NOTAUTH with TSIG error BADSIG (RFC 8945 §5.2.2).
    let tsig_refusal = |log: String| {
        log.lines().any(|l| {
            l.contains("TSIG refused: the MAC does not verify")
                && l.contains("NOTAUTH, TSIG error BADSIG")
        })
    };
    while !tsig_refusal(d.log_text()) || !bad.log().contains("failed to verify TSIG") {
        assert!(
            Instant::now() < deadline,
            "no TSIG refusal logged:\n{}\n{}",
            d.log_text(),
            bad.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(soa_serial(&bad.addr(), ZONE), None);
    std::fs::write(src, source(5, "www A 192.0.2.81\n")).unwrap();
    good.wait_for_serial(ZONE, 6, Duration::from_secs(10));
    assert_eq!(soa_serial(&bad.addr(), ZONE), None);
}

/// `hosts` A records `hostN`, the address's last octet `octet + N % 200`.
fn hosts(count: usize, octet: usize) -> String {
    (0..count)
        .map(|i| format!("host{i} A 198.51.100.{}\n", (octet + i % 200) % 250))
        .collect()
}

/// A zone transfer by `dig -y` (which checks the TSIG of every message and
/// fails the transfer when one has none or a wrong one): (whether dig
/// finished it, its messages, the TSIG records it printed, its output).
fn dig_xfr(server: &str, key: &str, qtype: &str) -> (bool, usize, usize, String) {
    let (host, port) = server.rsplit_once(':').unwrap();
    let out = std::process::Command::new("dig")
        .args(["-p", port, &format!("@{host}"), "-y", key, ZONE, qtype])
        .output()
        .expect("dig (Debian package bind9-dnsutils)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // ";; XFR size: 1234 records (messages 56, bytes 789)"
    let messages = text
        .lines()
        .find_map(|l| l.split("(messages ").nth(1))
        .and_then(|m| m.split(',').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let tsigs = text
        .lines()
        .filter(|l| l.split_whitespace().nth(3) == Some("TSIG"))
        .count();
    let done = out.status.success() && !text.contains("Transfer failed") && messages > 0;
    (done, messages, tsigs, text)
}

/// How a secondary stands in `zone status --json`.
fn secondary_state(d: &Daemon, addr: &str) -> serde_json::Value {
    let s = status(d);
    s["Secondaries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["Address"] == addr)
        .cloned()
        .unwrap_or_else(|| panic!("{addr} not in {s:#}"))
}

#[test]
fn a_zone_of_many_messages_transfers_with_tsig_on_every_message() {
    const SECRET: &str = "zlCZbVJPIhobIs1gJNQfrsS3xCxxsR9pMUrGwG8OgG8=";
    const WRONG: &str = "Yk9mZkJ5T25lQnl0ZVRoaXNJc05vdFRoZUtleUF0QWxsIQ==";
    let token = TestToken::new("zsigner-tsig-big");
    let dir = TempDir::new("zsigner-tsig-big-src");
    let keys = dir.path().join("tsig.keys");
    std::fs::write(&keys, format!("xfr-key hmac-sha256 {SECRET}\n")).unwrap();
    let dns = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(
        &token,
        "node-a",
        &["--dns-listen", &dns, "--tsig-keys", keys.to_str().unwrap()],
    );
    d.ctl_ok(&["zone", "add", ZONE]); // NSEC3, the default
    let key = ("xfr-key", SECRET);
    let knot = Knot::start_secondary_tsig(&[ZONE], std::slice::from_ref(&dns), key);
    let nsd = Nsd::start_secondary_tsig(&[ZONE], &dns, key);
    // A secondary with the key's name but another secret: it never loads.
    let wrong = Knot::start_secondary_tsig(&[ZONE], std::slice::from_ref(&dns), ("xfr-key", WRONG));
    let src = dir.path().join("zone");
    // 3,000 names with NSEC3: about a megabyte of answer, many messages.
    std::fs::write(&src, source(5, &hosts(3000, 0))).unwrap();
    let (k, n, w) = (knot.addr(), nsd.addr(), wrong.addr());
    d.ctl_ok(&[
        "zone",
        "source",
        ZONE,
        "--file",
        src.to_str().unwrap(),
        "--secondary",
        &k,
        "--secondary",
        &n,
        "--secondary",
        &w,
        "--tsig",
        "xfr-key",
    ]);
    knot.wait_for_serial(ZONE, 5, Duration::from_secs(60));
    nsd.wait_for_serial(ZONE, 5, Duration::from_secs(60));

    // dig checks each message's TSIG; it prints one TSIG record per message.
    let tsig = format!("hmac-sha256:xfr-key:{SECRET}");
    let (done, messages, tsigs, out) = dig_xfr(&dns, &tsig, "AXFR");
    assert!(
        done,
        "dig's AXFR failed:\n{}",
        &out[out.len().saturating_sub(2000)..]
    );
    assert!(messages >= 10, "the zone fits in {messages} messages");
    assert_eq!(tsigs, messages, "a message without its TSIG");
    // The control: dig with the wrong secret sees the first message fail.
    let (done, _, _, out) = dig_xfr(&dns, &format!("hmac-sha256:xfr-key:{WRONG}"), "AXFR");
    assert!(!done, "an AXFR under the wrong secret went through:\n{out}");
    assert!(out.contains("BADSIG"), "refused as RFC 8945 says: {out}");

    // A change of 400 names goes by IXFR, itself several messages.
    let changed: String = (0..3000)
        .map(|i| {
            let octet = if i < 400 { 7 } else { 0 };
            format!("host{i} A 198.51.100.{}\n", (octet + i % 200) % 250)
        })
        .collect();
    std::fs::write(&src, source(6, &changed)).unwrap();
    knot.wait_for_serial(ZONE, 6, Duration::from_secs(60));
    nsd.wait_for_serial(ZONE, 6, Duration::from_secs(60));
    let (done, messages, tsigs, out) = dig_xfr(&dns, &tsig, "IXFR=5");
    assert!(done, "dig's IXFR failed:\n{out}");
    assert!(
        out.lines().filter(|l| l.contains("\tSOA\t")).count() == 4,
        "not an IXFR from 5 to 6:\n{}",
        &out[..out.len().min(3000)]
    );
    assert!(messages >= 3, "the change fits in {messages} messages");
    assert_eq!(tsigs, messages, "a message without its TSIG");
    assert!(
        knot.log().contains("IXFR, incoming") || knot.log().contains("IXFR"),
        "knot did not take the change by IXFR:\n{}",
        knot.log()
    );
    // What both secondaries serve validates, the change included.
    let ds = ds_lines(&d.ctl_ok(&["ds", ZONE]));
    for server in [&k, &n] {
        let unbound = Unbound::start(&[(ZONE, server.clone())], &ds);
        wait_validated(
            &unbound,
            "host1.signed.test.",
            Rcode::NOERROR,
            &["198.51.100.8"],
        );
        wait_validated(
            &unbound,
            "host399.signed.test.",
            Rcode::NOERROR,
            &["198.51.100.206"],
        );
    }
    // The secondary that cannot check the answers has no zone, and the
    // zone's status says so.
    let state = secondary_state(&d, &w);
    assert_eq!(state["Loaded"], false, "{state:#}");
    assert!(
        state["State"]
            .as_str()
            .unwrap()
            .contains("has not loaded the zone"),
        "{state:#}"
    );
    let state = secondary_state(&d, &k);
    assert_eq!(state["Loaded"], true, "{state:#}");
    assert_eq!(state["Behind"], false, "{state:#}");
}

#[test]
fn a_change_at_the_primary_reaches_the_secondaries_signed_by_notify() {
    let token = TestToken::new("zsigner-primary");
    let dns = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(&token, "node-a", &["--dns-listen", &dns]);
    d.ctl_ok(&["zone", "add", ZONE]);
    // The hidden primary serves the unsigned zone; its SOA REFRESH is an
    // hour, so only its NOTIFY can bring a change within seconds.
    let primary = Knot::start_primary(&[ZONE], &dns);
    let unsigned = |serial: u32, www: &str| {
        format!(
            "$ORIGIN signed.test.\n$TTL 2\n@ SOA ns.signed.test. h.signed.test. {serial} 3600 600 86400 2\n\
             @ NS ns.signed.test.\nns A 127.0.0.1\nwww A {www}\n"
        )
    };
    let dir = TempDir::new("zsigner-primary-src");
    let file = dir.path().join("unsigned");
    std::fs::write(&file, unsigned(20, "192.0.2.80")).unwrap();
    primary.publish(ZONE, &file, 20);
    let secondary = Knot::start_secondary(&[ZONE], std::slice::from_ref(&dns));
    d.ctl_ok(&[
        "zone",
        "source",
        ZONE,
        "--primary",
        &primary.addr(),
        "--secondary",
        &secondary.addr(),
    ]);
    secondary.wait_for_serial(ZONE, 20, Duration::from_secs(20));
    let ds = ds_lines(&d.ctl_ok(&["ds", ZONE]));
    let unbound = Unbound::start(&[(ZONE, secondary.addr())], &ds);
    wait_validated(
        &unbound,
        "www.signed.test.",
        Rcode::NOERROR,
        &["192.0.2.80"],
    );
    let s = status(&d);
    assert_eq!(s["SourcePrimary"], primary.addr(), "{s:#}");

    std::fs::write(&file, unsigned(21, "192.0.2.81")).unwrap();
    let changed = Instant::now();
    primary.publish(ZONE, &file, 21);
    secondary.wait_for_serial(ZONE, 21, Duration::from_secs(10));
    eprintln!(
        "primary change to signed at the secondary: {:?}",
        changed.elapsed()
    );
    wait_validated(
        &unbound,
        "www.signed.test.",
        Rcode::NOERROR,
        &["192.0.2.81"],
    );
    assert!(d.log_text().contains("NOTIFY from the primary"));

    // A primary that does not serve the zone: the error names it, and
    // nothing is served for the zone.
    d.ctl_ok(&["zone", "add", "other.test."]);
    d.ctl_ok(&[
        "zone",
        "source",
        "other.test.",
        "--primary",
        &primary.addr(),
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s: serde_json::Value =
            serde_json::from_str(&d.ctl_ok(&["zone", "status", "other.test.", "--json"])).unwrap();
        let e = s["LastError"].as_str().unwrap();
        if !e.is_empty() {
            assert!(
                e.contains(&format!("transfer from primary {}", primary.addr())),
                "{e}"
            );
            assert_eq!(s["Published"], false);
            break;
        }
        assert!(Instant::now() < deadline, "no error: {s:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(soa_serial(&dns, "other.test."), None);
}

#[test]
fn secondaries_on_a_key_master_that_serves_no_dns_are_refused_by_name() {
    let token = TestToken::new("zsigner-nodns");
    let d = Daemon::start(&token, "node-a", &[]);
    d.ctl_ok(&["zone", "add", ZONE]);
    let dir = TempDir::new("zsigner-nodns-src");
    let src = dir.path().join("zone");
    std::fs::write(&src, source(1, "www A 192.0.2.80\n")).unwrap();
    let err = d.ctl_err(&[
        "zone",
        "source",
        ZONE,
        "--file",
        src.to_str().unwrap(),
        "--secondary",
        "127.0.0.1:5353",
    ]);
    assert!(
        err.contains("FailedPrecondition")
            && err.contains("serves no DNS (start it with --dns-listen)"),
        "{err}"
    );
    // Nothing changed; a signed file alone needs no DNS.
    assert_eq!(status(&d)["SourceFile"], "");
    let out = dir.path().join("signed");
    d.ctl_ok(&[
        "zone",
        "source",
        ZONE,
        "--file",
        src.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !out.exists() {
        assert!(
            Instant::now() < deadline,
            "no signed file: {}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_validates(&out, ZONE);
}

/// The RRSIGs' expirations in an answer Knot gives with DO set.
fn expirations(server: &str, name: &str, rtype: Rtype) -> Vec<u32> {
    let a = crate::common::dns::ask(server, name, rtype, true).expect("knot answers");
    a.answer()
        .unwrap()
        .limit_to::<domain::rdata::Rrsig<_, _>>()
        .map(|r| r.unwrap().data().expiration().into_int())
        .collect()
}

/// Signatures valid for one minute: the signer refreshes them well before
/// they expire, the secondary follows, and for three validity periods
/// every answer through Unbound is validated (Unbound told to allow no
/// clock skew, so that an expired signature would be bogus) while Knot
/// never serves a signature that has expired.
#[test]
fn signatures_of_a_minute_are_refreshed_before_they_expire() {
    let token = TestToken::new("zsigner-minute");
    let dns = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(&token, "node-min", &["--dns-listen", &dns]);
    let knot = Knot::start_secondary(&[ZONE], std::slice::from_ref(&dns));
    d.ctl_ok(&[
        "zone",
        "add",
        ZONE,
        "--denial",
        "nsec",
        "--signature-validity",
        "1m",
        "--dnskey-signature-validity",
        "1m",
        "--dnskey-ttl",
        "2",
        "--ksk-lifetime",
        "off",
        "--zsk-lifetime",
        "off",
    ]);
    let _src = serve_file_source(&d, &knot, "zsigner-minute-src");
    let trust = format!(
        "{}\nval-sig-skew-min: 0\nval-sig-skew-max: 0\n",
        d.ctl_ok(&["trust-anchor", ZONE, "--format", "unbound"])
    );
    let unbound = Unbound::start_with(&[(ZONE, knot.addr())], &trust);
    // A validity period and three quarters by default (two refreshes or
    // more); KEYMASTER_SOAK_SECS=180 watches three periods, as a soak.
    let soak: u64 = std::env::var("KEYMASTER_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(105);
    let began = Instant::now();
    let (mut answers, mut serials) = (0, std::collections::BTreeSet::new());
    while began.elapsed() < Duration::from_secs(soak) {
        let (rc, ad, got) = resolve_a(&unbound, "www.signed.test.");
        assert!(
            rc == Rcode::NOERROR && ad && got == ["192.0.2.80"],
            "after {:?}: {rc} AD={ad} {got:?}: {}",
            began.elapsed(),
            unbound.log()
        );
        answers += 1;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as u32;
        for (name, rtype) in [("www.signed.test.", Rtype::A), (ZONE, Rtype::DNSKEY)] {
            let exp = expirations(&knot.addr(), name, rtype);
            assert!(!exp.is_empty(), "{name} {rtype}: no RRSIG served");
            assert!(
                exp.iter().all(|&e| e > now),
                "{name} {rtype}: an expired signature is served ({exp:?}, now {now})"
            );
        }
        serials.insert(soa_serial(&knot.addr(), ZONE).unwrap());
        std::thread::sleep(Duration::from_millis(1000));
    }
    eprintln!(
        "{answers} answers AD over {soak} s of 60 s signatures; {} serials served",
        serials.len()
    );
    // Refreshed twice or more within the soak.
    assert!(serials.len() >= 3, "{serials:?}");
}
