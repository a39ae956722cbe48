//! A child zone keymaster does not manage: Knot DNS signs it with keys of
//! its own and publishes CDS/CDNSKEY; its parent is kept signed by
//! keymaster and served by another Knot; Unbound is anchored at the parent
//! only. keymaster polls the child's servers: a CDS that one server
//! serves unsigned, or that the servers disagree on, changes nothing and
//! is reported; when the child rolls its KSK, the parent's DS follows the
//! CDS, and every answer for the child stays validated.

use std::time::{Duration, Instant};

use crate::common::dns::{served, Knot, Nsd, Unbound};
use crate::common::*;
use domain::base::iana::Rtype;

const PARENT: &str = "ext.test.";
const CHILD: &str = "out.ext.test.";

#[test]
fn an_external_childs_ksk_roll_reaches_the_parent_through_its_cds() {
    let token = TestToken::new("external-children");
    let dns = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(&token, "node-ext", &["--dns-listen", &dns]);
    let parent_server = Knot::start_secondary(&[PARENT], std::slice::from_ref(&dns));
    let child = Knot::start_signing(
        CHILD,
        &format!(
            "$ORIGIN {CHILD}\n$TTL 2\n@ SOA ns h 1 3600 600 86400 2\n@ NS ns\nns A 127.0.0.1\n\
             www A 192.0.2.80\n"
        ),
    );
    d.add_still_zone(PARENT, &["--dnskey-ttl", "2", "--ds-ttl", "2"]);
    let dir = TempDir::new("external-children-src");
    let parent_text = format!(
        "$ORIGIN {PARENT}\n$TTL 2\n@ SOA ns h 1 10 10 60 2\n@ NS ns\nns A 127.0.0.1\n\
         out NS ns.out\nns.out A 127.0.0.1\n"
    );
    d.keep_signed(PARENT, &dir, &parent_text, &parent_server);
    let anchors = d.ctl_ok(&["trust-anchor", PARENT, "--format", "unbound"]);
    let unbound = Unbound::start_with(
        &[(PARENT, parent_server.addr()), (CHILD, child.addr())],
        &anchors,
    );
    let www = "www.out.ext.test.";
    let validated = || unbound.resolve(www, Rtype::A) == Ok(("NOERROR".into(), true));

    // The operator gives the child's DS as the child publishes it now
    // (its CDS), and two servers: Knot, and an NSD serving a copy of the
    // child in which the CDS and CDNSKEY RRSIGs are gone.
    let ds0 = served(&child.addr(), CHILD, Rtype::CDS);
    assert_eq!(
        ds0.len(),
        1,
        "Knot publishes the CDS of its one KSK: {ds0:?}"
    );
    let copy = transfer(&child.addr(), CHILD);
    let stripped: String = copy
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            !(f.get(3) == Some(&"RRSIG") && matches!(f.get(4), Some(&"CDS") | Some(&"CDNSKEY")))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(stripped.len() < copy.len());
    let unsigned = Nsd::start_primary(CHILD, &stripped);
    let intact = Nsd::start_primary(CHILD, &copy);
    for nsd in [&unsigned, &intact] {
        nsd.wait_for_serial(CHILD, 1, Duration::from_secs(20));
    }
    // Before it is added, the operator sees the zone cut in the parent's
    // served zone, not kept.
    let listed: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["zone", "delegations", PARENT, "--json"])).unwrap();
    assert_eq!(
        listed,
        serde_json::json!([{"child": CHILD, "source": "zone", "ns": ["ns.out.ext.test."], "ds": []}])
    );
    let add = |servers: &[String], ds: &str| {
        let mut args = vec!["zone", "delegation", "add", PARENT, CHILD, "--ds", ds];
        for s in servers {
            args.extend(["--ns", s.as_str()]);
        }
        args.extend(["--ds-ttl", "2", "--poll-period", "1s"]);
        d.ctl_ok(&args);
    };
    add(&[child.addr(), unsigned.addr()], &ds0[0]);

    // The parent now publishes the DS: the child validates.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !validated() {
        assert!(
            Instant::now() < deadline,
            "the child does not validate through the DS given: {:?}\n{}",
            unbound.resolve(www, Rtype::A),
            unbound.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(served(&parent_server.addr(), CHILD, Rtype::DS), ds0);

    // Typos cannot break the delegation: a DS that matches none of the
    // child's keys is refused (checked against what its servers serve),
    // and re-adding it without --ds (to change its servers, say) would
    // make it insecure, which needs --insecure.
    let last = ds0[0].chars().last().unwrap();
    let typo = format!(
        "{}{}",
        &ds0[0][..ds0[0].len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    let mut args = vec!["zone", "delegation", "add", PARENT, CHILD, "--ds", &typo];
    let child_addr = child.addr();
    args.extend(["--ns", &child_addr]);
    let err = d.ctl_err(&args);
    assert!(
        err.contains("FailedPrecondition")
            && err.contains("no DS given matches a key of the DNSKEY RRset its servers serve"),
        "{err}"
    );
    let err = d.ctl_err(&[
        "zone",
        "delegation",
        "add",
        PARENT,
        CHILD,
        "--ns",
        &child_addr,
    ]);
    assert!(
        err.contains("is secure") && err.contains("--insecure") && err.contains("delegation set"),
        "{err}"
    );
    assert_eq!(served(&parent_server.addr(), CHILD, Rtype::DS), ds0);
    assert!(validated(), "{:?}", unbound.resolve(www, Rtype::A));

    // An unsigned CDS at one server: refused, naming the server.
    let row = poll(&d);
    let blocked = row["blocked"].as_str().unwrap_or_default().to_string();
    assert!(
        blocked.contains(&unsigned.addr()) && blocked.contains("CDS RRset is unsigned"),
        "{row}"
    );
    // With an intact copy the servers agree, and the DS already matches.
    // The servers change by `delegation set`, the DS left as it is.
    let shown = d.ctl_ok(&[
        "zone",
        "delegation",
        "set",
        PARENT,
        CHILD,
        "--ns",
        &child.addr(),
        "--ns",
        &intact.addr(),
    ]);
    assert!(shown.contains("polled every 1s"), "{shown}");
    assert!(shown.contains(&ds0[0]), "{shown}");
    let row = poll(&d);
    assert!(row["blocked"].is_null(), "{row}");
    assert_eq!(
        row["last_result"], "the DS RRset already matches the child's CDS",
        "{row}"
    );

    // The child rolls its KSK; its copy at NSD does not follow: the
    // servers disagree, and the parent's DS stays.
    child.ctl(&["zone-key-rollover", CHILD, "ksk"]);
    let began = Instant::now();
    let mut answers = 0;
    let mut check = |what: &str| {
        assert!(
            validated(),
            "{what}: {:?}\n{}",
            unbound.resolve(www, Rtype::A),
            unbound.log()
        );
        answers += 1;
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "{what}: too long\n{}\n{}",
            d.ctl_ok(&["zone", "delegations", PARENT]),
            child.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    while served(&child.addr(), CHILD, Rtype::CDS) == ds0 {
        check("waiting for the child's new CDS");
    }
    let ds1 = served(&child.addr(), CHILD, Rtype::CDS);
    let new: Vec<&String> = ds1.iter().filter(|r| !ds0.contains(r)).collect();
    assert_eq!(new.len(), 1, "one new KSK: {ds0:?} then {ds1:?}");
    let new = new[0].clone();
    loop {
        let row = poll(&d);
        if row["blocked"]
            .as_str()
            .unwrap_or_default()
            .contains("disagree")
        {
            break;
        }
        check("waiting for the disagreement to be seen");
    }
    assert_eq!(served(&parent_server.addr(), CHILD, Rtype::DS), ds0);

    // Asked at the child's one real server, the CDS is taken: the parent
    // serves the new DS, validated throughout.
    add(&[child.addr()], &ds0[0]);
    while !served(&parent_server.addr(), CHILD, Rtype::DS).contains(&new) {
        check("waiting for the parent to serve the new DS");
    }
    // The child finishes its roll once told the DS is there; the old KSK
    // goes, and the parent's DS is the new one alone.
    child.ctl(&["zone-ksk-submitted", CHILD]);
    while served(&parent_server.addr(), CHILD, Rtype::DS) != vec![new.clone()]
        || served(&child.addr(), CHILD, Rtype::DNSKEY)
            .iter()
            .filter(|k| k.starts_with("257 "))
            .count()
            != 1
    {
        check("waiting for the old KSK and its DS to go");
    }
    for _ in 0..10 {
        check("after the roll");
    }
    eprintln!(
        "external child's KSK roll followed in {:?}, {answers} answers through Unbound, all AD",
        began.elapsed()
    );
    let listed: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["zone", "delegations", PARENT, "--json"])).unwrap();
    let row = &listed.as_array().unwrap()[0];
    assert_eq!(row["child"], CHILD);
    assert_eq!(row["source"], "cds", "{row}");
    assert_eq!(row["ds"], serde_json::json!([new]), "{row}");
    // The change is in the audit log with what the server said.
    let changes = d.audit_details(PARENT, "delegation-ds");
    assert!(
        changes
            .iter()
            .any(|c| c.contains(&new) && c.contains(&child.addr())),
        "{changes:?}"
    );
}

/// Polls now and returns the one child's row.
fn poll(d: &Daemon) -> serde_json::Value {
    let rows: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["zone", "poll-children", PARENT, "--json"])).unwrap();
    rows.as_array().unwrap()[0].clone()
}

/// The zone as a server transfers it (dig AXFR), one SOA.
fn transfer(server: &str, zone: &str) -> String {
    let (host, port) = server.split_once(':').unwrap();
    let out = std::process::Command::new("dig")
        .args([
            &format!("@{host}"),
            "-p",
            port,
            zone,
            "AXFR",
            "+onesoa",
            "+nocmd",
            "+nostats",
        ])
        .output()
        .expect("dig (Debian package bind9-dnsutils)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("SOA"), "no transfer of {zone}: {text}");
    text
}
