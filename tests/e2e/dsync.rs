//! NOTIFY(CDS) through the parent's DSYNC record (RFC 9859), with two
//! keymaster instances: the parent's keeps `dsync.test.` signed behind a
//! Knot secondary, publishes a DSYNC RRset naming its DNS listener
//! (`zone set --dsync`), and
//! keeps the child as an external delegation polled every 12 hours; the
//! child's keeps `kid.dsync.test.` signed with CDS/CDNSKEY behind another
//! Knot secondary. A stock and a strict Unbound are anchored at the
//! parent. TTLs: data 3 s, DNSKEY 6 s, DS 9 s.

use std::time::{Duration, Instant};

use crate::common::dns::{served, Knot, Validators};
use crate::common::*;
use domain::base::iana::Rtype;

const PARENT: &str = "dsync.test.";
const CHILD: &str = "kid.dsync.test.";
const WWW: &str = "www.kid.dsync.test.";
const DSYNC_AT: &str = "_dsync.dsync.test.";

/// The parent's source: the child's delegation, and the name of the
/// parent's DNS listener that its DSYNC record names.
fn parent_text() -> String {
    format!(
        "$ORIGIN {PARENT}\n$TTL 3\n@ SOA ns h 1 10 10 60 3\n@ NS ns\nns A 127.0.0.1\n\
         notify A 127.0.0.1\nkid NS ns.kid\nns.kid A 127.0.0.1\n"
    )
}

/// Has the parent announce `notify.dsync.test.:port` by its DSYNC RRset,
/// and waits until its secondary serves the record, signed.
fn announce(p: &Daemon, server: &str, port: u16) {
    let before = served(server, DSYNC_AT, Rtype::DSYNC);
    p.ctl_ok(&[
        "zone",
        "set",
        PARENT,
        "--dsync",
        &format!("notify.dsync.test.:{port}"),
    ]);
    let began = Instant::now();
    loop {
        let now = served(server, DSYNC_AT, Rtype::DSYNC);
        if !now.is_empty() && now != before {
            assert_eq!(now.len(), 2, "CDS and CDNSKEY: {now:?}");
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "{}",
            p.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn child_text() -> String {
    format!(
        "$ORIGIN {CHILD}\n$TTL 3\n@ SOA ns h 1 10 10 60 3\n@ NS ns\nns A 127.0.0.1\n\
         www A 192.0.2.80\n"
    )
}

/// `dig +opcode=4` (NOTIFY) for `name` and `qtype` at `server`: its status.
fn dig_notify(server: &str, name: &str, qtype: &str) -> String {
    let (host, port) = server.split_once(':').unwrap();
    let out = std::process::Command::new("dig")
        .args([
            &format!("@{host}"),
            "-p",
            port,
            "+opcode=4",
            "+norec",
            "+tries=1",
        ])
        .args([name, qtype])
        .output()
        .expect("dig (Debian package bind9-dnsutils)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("status: ")
        .nth(1)
        .and_then(|t| t.split(',').next())
        .unwrap_or("no answer")
        .to_string()
}

fn all_validated(v: &Validators, answers: &mut u32) {
    for u in v.both() {
        assert_eq!(
            u.resolve(WWW, Rtype::A),
            Ok(("NOERROR".to_string(), true)),
            "an answer not validated: {}",
            u.log()
        );
        *answers += 1;
    }
}

fn ksk_ids(d: &Daemon) -> Vec<String> {
    d.key_rows(CHILD)
        .into_iter()
        .filter(|k| k.1 == "ksk")
        .map(|k| k.0)
        .collect()
}

/// Polls of the child the parent made on a NOTIFY(CDS).
fn polls_on_notify(p: &Daemon) -> Vec<serde_json::Value> {
    p.audit_entries(PARENT)
        .into_iter()
        .filter(|e| e["caller"] == "cds-notify")
        .collect()
}

#[test]
fn a_childs_ksk_roll_reaches_its_parent_by_notify_cds_through_dsync() {
    // The parent's keymaster.
    let parent_token = TestToken::new("dsync-parent");
    let pdns = format!("127.0.0.1:{}", free_port());
    let p = Daemon::start(&parent_token, "dsync-p", &["--dns-listen", &pdns]);
    let parent_server = Knot::start_secondary(&[PARENT], std::slice::from_ref(&pdns));
    p.add_still_zone(PARENT, &["--dnskey-ttl", "6", "--ds-ttl", "9"]);
    let pport: u16 = pdns.rsplit(':').next().unwrap().parse().unwrap();
    let pdir = TempDir::new("dsync-parent-src");
    p.keep_signed(PARENT, &pdir, &parent_text(), &parent_server);
    announce(&p, &parent_server.addr(), pport);

    // The child's keymaster.
    let child_token = TestToken::new("dsync-child");
    let cdns = format!("127.0.0.1:{}", free_port());
    let c = Daemon::start(&child_token, "dsync-c", &["--dns-listen", &cdns]);
    let child_server = Knot::start_secondary(&[CHILD], std::slice::from_ref(&cdns));
    let (publication, parent) = (child_server.addr(), parent_server.addr());
    let mut add = vec!["zone", "add", CHILD];
    add.extend_from_slice(QUICK_ROLLS);
    add.extend(["--cds", "always", "--publication-server", &publication]);
    add.extend(["--parent-server", &parent]);
    c.ctl_ok(&add);
    let cdir = TempDir::new("dsync-child-src");
    c.keep_signed(CHILD, &cdir, &child_text(), &child_server);

    // The parent keeps the child, polled every 12 hours, from the DS its
    // CDS names now.
    let ds0 = served(&child_server.addr(), CHILD, Rtype::CDS);
    assert_eq!(ds0.len(), 1, "{ds0:?}");
    p.ctl_ok(&[
        "zone",
        "delegation",
        "add",
        PARENT,
        CHILD,
        "--ds",
        &ds0[0],
        "--ns",
        &child_server.addr(),
        "--ds-ttl",
        "9",
        "--poll-period",
        "12h",
    ]);
    let anchors = p.ctl_ok(&["trust-anchor", PARENT, "--format", "unbound"]);
    let stubs = [(PARENT, parent_server.addr()), (CHILD, child_server.addr())];
    let validators = Validators::start(&stubs, &anchors);
    validators.wait_validated(WWW, Rtype::A, 30);
    // The DSYNC RRset keymaster publishes validates like the rest.
    validators.wait_validated(DSYNC_AT, Rtype::DSYNC, 30);

    // A NOTIFY(CDS) for a name the parent keeps no delegation of is
    // refused, and said once; a flood for the child makes one poll.
    assert_eq!(dig_notify(&pdns, "nobody.dsync.test.", "CDS"), "REFUSED");
    assert_eq!(dig_notify(&pdns, "nobody.dsync.test.", "CDS"), "REFUSED");
    let said = p
        .log_text()
        .matches("NOTIFY(CDS) refused: no delegation of this name")
        .count();
    assert_eq!(said, 1, "{}", p.log_text());
    for _ in 0..5 {
        assert_eq!(dig_notify(&pdns, CHILD, "CDNSKEY"), "NOERROR");
    }
    let began = Instant::now();
    while polls_on_notify(&p).is_empty() {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "{}",
            p.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(polls_on_notify(&p).len(), 1, "{:#?}", polls_on_notify(&p));
    let polls_before = polls_on_notify(&p).len();

    // Control: with NOTIFY(CDS) off at the child, its KSK roll waits for
    // the parent's DS, which the parent does not look for (its next poll
    // is 12 hours away).
    c.ctl_ok(&["zone", "set", CHILD, "--cds-notify", "false"]);
    let old = ksk_ids(&c);
    assert_eq!(old.len(), 1);
    let old_tag = c
        .key_rows(CHILD)
        .into_iter()
        .find(|k| k.0 == old[0])
        .unwrap()
        .3;
    c.ctl_ok(&["key", "roll", CHILD, &old_tag.to_string()]);
    let mut answers = 0;
    let began = Instant::now();
    loop {
        all_validated(&validators, &mut answers);
        let list = c.ctl_ok(&["key", "list", CHILD]);
        if list.contains("KskWaitingForDsUpdate") {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the roll does not wait for the parent: {list}\n{}",
            c.log_text()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let waiting = Instant::now();
    while waiting.elapsed() < Duration::from_secs(15) {
        all_validated(&validators, &mut answers);
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(served(&parent_server.addr(), CHILD, Rtype::DS), ds0);
    assert_eq!(polls_on_notify(&p).len(), polls_before);

    // NOTIFY(CDS) on, but the parent's DSYNC record points nowhere: the
    // child says so, and nothing changes.
    announce(&p, &parent_server.addr(), free_port());
    c.ctl_ok(&["zone", "set", CHILD, "--cds-notify", "true"]);
    let began = Instant::now();
    while !c
        .log_text()
        .contains("the parent's DSYNC endpoint was not told: NOTIFY(CDS) to 127.0.0.1:")
    {
        all_validated(&validators, &mut answers);
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "{}",
            c.log_text()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(served(&parent_server.addr(), CHILD, Rtype::DS), ds0);
    assert_eq!(polls_on_notify(&p).len(), polls_before);

    // The DSYNC record names the parent's listener again: the child finds
    // it, the parent polls at once, and the roll ends within seconds.
    announce(&p, &parent_server.addr(), pport);
    let told = Instant::now();
    let seen = loop {
        all_validated(&validators, &mut answers);
        if served(&parent_server.addr(), CHILD, Rtype::DS) != ds0 {
            break told.elapsed();
        }
        assert!(
            told.elapsed() < Duration::from_secs(30),
            "the parent did not take the new DS: {}\n{}",
            p.ctl_ok(&["zone", "delegations", PARENT]),
            c.log_text()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(
        polls_on_notify(&p)
            .iter()
            .any(|e| e["action"] == "delegation-ds"),
        "{:#?}",
        polls_on_notify(&p)
    );
    assert!(
        c.log_text()
            .contains("NOTIFY(CDS) sent to the parent's DSYNC endpoint"),
        "{}",
        c.log_text()
    );
    let began = Instant::now();
    loop {
        all_validated(&validators, &mut answers);
        let now = ksk_ids(&c);
        if now.len() == 1 && now != old {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(90),
            "the KSK roll did not finish: {}",
            c.ctl_ok(&["key", "list", CHILD])
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let new_ds = served(&child_server.addr(), CHILD, Rtype::CDS);
    assert_eq!(served(&parent_server.addr(), CHILD, Rtype::DS), new_ds);
    validators.wait_validated(WWW, Rtype::A, 30);
    eprintln!(
        "the parent served the new DS {seen:?} after its DSYNC record was mended; {answers} answers, all AD"
    );
}
