//! Bad input gets a precise status naming the problem and changes nothing.

use std::str::FromStr;

use crate::common::*;
use domain::base::name::Name;
use keymaster::proto;
use tonic::Code;

fn wire(name: &str) -> Vec<u8> {
    Name::<Vec<u8>>::from_str(name).unwrap().as_slice().to_vec()
}

fn a_rrset(owner: &str, records: Vec<(u32, u32)>) -> proto::Rrset {
    proto::Rrset {
        owner: wire(owner),
        rtype: 1,
        records: records
            .into_iter()
            .enumerate()
            .map(|(i, (rclass, ttl))| proto::RecordData {
                rclass,
                ttl,
                rdata: vec![192, 0, 2, i as u8],
            })
            .collect(),
    }
}

/// The store's view: zones and every zone's keys, as JSON text.
fn snapshot(d: &Daemon) -> String {
    let zones = d.ctl_ok(&["zone", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&zones).unwrap();
    let mut s = zones.clone();
    for z in v.as_array().unwrap() {
        s.push_str(&d.ctl_ok(&["key", "list", z["ZoneName"].as_str().unwrap(), "--json"]));
    }
    s
}

fn sign_file(d: &Daemon, zone: &str, text: &str) -> String {
    let (_dir, output, out) = d.sign_text(zone, text);
    assert!(
        !out.status.success(),
        "zone sign should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!output.exists(), "no output is left behind on failure");
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_precisely_and_changes_nothing() {
    let token = TestToken::new("bad");
    let d = Daemon::start(
        &token,
        "a",
        &["--max-batch-rrsets", "5", "--max-message-bytes", "200000"],
    );
    d.ctl_ok(&["zone", "add", "bad.example"]);
    let before = snapshot(&d);
    let objects_before = token.list_objects();

    // A malformed zone line: the error names the line.
    let err = sign_file(
        &d,
        "bad.example",
        "$ORIGIN bad.example.\n$TTL 300\n@ IN SOA ns1 h 1 2 3 4 5\n@ IN NS ns1\nns1 IN A 192.0.2.300\n",
    );
    assert!(
        err.contains("InvalidArgument") && err.contains("line 5"),
        "{err}"
    );

    // A record outside the zone.
    let err = sign_file(
        &d,
        "bad.example",
        "$ORIGIN bad.example.\n@ 300 IN SOA ns1 h 1 2 3 4 5\nwww.other.example. 300 IN A 192.0.2.1\n",
    );
    assert!(
        err.contains("InvalidArgument") && err.contains("www.other.example"),
        "{err}"
    );

    // No SOA.
    let err = sign_file(&d, "bad.example", "www.bad.example. 300 IN A 192.0.2.1\n");
    assert!(err.contains("no SOA"), "{err}");

    // Records of one RRset with different TTLs in a zone file.
    let err = sign_file(
        &d,
        "bad.example",
        "$ORIGIN bad.example.\n@ 300 IN SOA ns1 h 1 2 3 4 5\nwww 300 IN A 192.0.2.1\nwww 600 IN A 192.0.2.2\n",
    );
    assert!(
        err.contains("different TTLs") && err.contains("www.bad.example"),
        "{err}"
    );

    // $INCLUDE would read the service's files.
    let err = sign_file(&d, "bad.example", "$INCLUDE /etc/passwd\n");
    assert!(err.contains("$INCLUDE"), "{err}");

    // An unknown zone.
    let err = sign_file(&d, "nowhere.example", "@ 300 IN SOA ns1 h 1 2 3 4 5\n");
    assert!(
        err.contains("NotFound") && err.contains("nowhere.example"),
        "{err}"
    );
    let err = d.ctl_err(&["zone", "show", "nowhere.example"]);
    assert!(err.contains("NotFound"), "{err}");
    let err = d.ctl_err(&["key", "list", "nowhere.example"]);
    assert!(err.contains("NotFound"), "{err}");

    // A wrong algorithm name, an unknown denial, a bad salt.
    let err = d.ctl_err(&["zone", "add", "x.example", "--algorithm", "rsasha1"]);
    assert!(err.contains("rsasha1"), "{err}");
    let err = d.ctl_err(&[
        "zone",
        "add",
        "x.example",
        "--algorithm",
        "rsasha256",
        "--bits",
        "1024",
    ]);
    assert!(err.contains("1024"), "{err}");
    let err = d.ctl_err(&["zone", "add", "x.example", "--denial", "nsec5"]);
    assert!(err.contains("nsec5"), "{err}");
    let err = d.ctl_err(&["zone", "add", "x.example", "--nsec3-salt", "xyz"]);
    assert!(err.contains("salt"), "{err}");
    let err = d.ctl_err(&["zone", "add", "bad.example"]);
    assert!(err.contains("AlreadyExists"), "{err}");

    // Signer service: each bad batch has its precise status.
    let mut signer = d.signer_client().await;
    let call = |rrsets: Vec<proto::Rrset>, zone: &str| proto::SignRrsetsRequest {
        zone: zone.into(),
        rrsets,
        inception: 0,
        expiration: 0,
        include_text: false,
    };
    let e = signer
        .sign_rrsets(call(vec![], "bad.example"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("no RRsets"));

    let e = signer
        .sign_rrsets(call(
            vec![a_rrset("www.bad.example.", vec![(1, 300), (1, 600)])],
            "bad.example",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("RRset 0") && e.message().contains("TTL"),
        "{}",
        e.message()
    );

    let e = signer
        .sign_rrsets(call(
            vec![
                a_rrset("ok.bad.example.", vec![(1, 300)]),
                a_rrset("www.bad.example.", vec![(1, 300), (3, 300)]),
            ],
            "bad.example",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("RRset 1") && e.message().contains("class"),
        "{}",
        e.message()
    );

    let e = signer
        .sign_rrsets(call(
            vec![a_rrset("www.other.example.", vec![(1, 300)])],
            "bad.example",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("outside the zone"), "{}", e.message());

    let e = signer
        .sign_rrsets(call(
            vec![a_rrset("www.bad.example.", vec![(1, 300)])],
            "nowhere.example",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    let mut bad_owner = a_rrset("www.bad.example.", vec![(1, 300)]);
    bad_owner.owner = vec![3, b'w', b'w'];
    let e = signer
        .sign_rrsets(call(vec![bad_owner], "bad.example"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    let mut rrsig = a_rrset("www.bad.example.", vec![(1, 300)]);
    rrsig.rtype = 46;
    let e = signer
        .sign_rrsets(call(vec![rrsig], "bad.example"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Over the batch limit (5) and over the request size limit (200 kB).
    let many: Vec<_> = (0..6)
        .map(|i| a_rrset(&format!("h{i}.bad.example."), vec![(1, 300)]))
        .collect();
    let e = signer
        .sign_rrsets(call(many, "bad.example"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(e.message().contains("max_batch_rrsets"), "{}", e.message());
    let mut huge = a_rrset("big.bad.example.", vec![(1, 300)]);
    huge.rtype = 16;
    huge.records[0].rdata = vec![0u8; 300_000];
    let e = signer
        .sign_rrsets(call(vec![huge], "bad.example"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message()
            .contains("over the limit of 200000 bytes (max_message_bytes)"),
        "{}",
        e.message()
    );

    // Nothing changed, in the store or in the token.
    assert_eq!(snapshot(&d), before);
    assert_eq!(token.list_objects(), objects_before);
    // And the service still works.
    let ok = signer
        .sign_rrsets(call(
            vec![a_rrset("www.bad.example.", vec![(1, 300)])],
            "bad.example",
        ))
        .await
        .expect("a good batch after bad ones");
    assert_eq!(ok.into_inner().signatures.len(), 1);
}

#[test]
fn zone_larger_than_the_limits_is_refused_with_the_limit_named() {
    let token = TestToken::new("limits");
    let d = Daemon::start(
        &token,
        "a",
        &["--max-zone-records", "20", "--max-zone-bytes", "100000"],
    );
    d.ctl_ok(&["zone", "add", "lim.example"]);
    let err = sign_file(&d, "lim.example", &sample_zone("lim.example", 30));
    assert!(
        err.contains("ResourceExhausted") && err.contains("limit is 20"),
        "{err}"
    );
    let err = sign_file(&d, "lim.example", &sample_zone("lim.example", 5000));
    assert!(
        err.contains("ResourceExhausted") && err.contains("max_zone_bytes"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_at_the_edges_is_refused_precisely_and_escaped() {
    let token = TestToken::new("edges");
    let d = Daemon::start(&token, "a", &[]);
    d.set_access(&format!(
        "{}\n[[grant]]\nname = \"ns-b.test\"\nroles = [\"signer\"]\nzones = [\"b.example\"]\n",
        default_access()
    ));
    d.ctl_ok(&["zone", "add", "edge.example"]);
    let before = snapshot(&d);
    let call = |zone: &str, rrsets: Vec<proto::Rrset>| proto::SignRrsetsRequest {
        zone: zone.into(),
        rrsets,
        inception: 0,
        expiration: 0,
        include_text: false,
    };
    let good = || a_rrset("www.edge.example.", vec![(1, 300)]);

    // An empty or malformed zone name is the caller's mistake, whoever it
    // is: InvalidArgument before any permission check.
    let other = d.pki.client("ns-b.test");
    let mut as_other = proto::signer_client::SignerClient::new(d.channel_as(&other).await.unwrap());
    for zone in ["", "  ", "a..b", "bad\u{1b}[31m.example"] {
        let e = as_other
            .sign_rrsets(call(zone, vec![good()]))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{zone:?}: {e:?}");
        assert!(!e.message().contains('\u{1b}'), "{}", e.message());
    }
    // What the caller sent is escaped in the audit log too.
    let log = d.ctl_ok(&["audit", "--json"]);
    assert!(!log.contains("\\u001b"), "raw escape in the log: {log}");
    assert!(log.contains(r#"bad\\u{1b}[31m.example"#), "{log}");

    let mut signer = d.signer_client().await;
    // A TTL of 2^31 or more (RFC 2181 §8).
    let e = signer
        .sign_rrsets(call(
            "edge.example",
            vec![a_rrset("www.edge.example.", vec![(1, 1 << 31)])],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("2^31"), "{}", e.message());
    let err = sign_file(
        &d,
        "edge.example",
        "$ORIGIN edge.example.\n@ 300 IN SOA ns1 h 1 2 3 4 5\n@ 300 IN NS ns1\nns1 2147483648 IN A 192.0.2.1\n",
    );
    assert!(err.contains("line 4") && err.contains("2^31"), "{err}");

    // Record data of an unknown type over 65,535 octets.
    let mut big = a_rrset("big.edge.example.", vec![(1, 300)]);
    big.rtype = 65280;
    big.records[0].rdata = vec![7u8; 70_000];
    let e = signer
        .sign_rrsets(call("edge.example", vec![big]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("65,535"), "{}", e.message());

    // An apex too long for NSEC3 owners is refused when the zone is added.
    let label = "a".repeat(63);
    let long = format!("{label}.{label}.{label}.{}.example", "b".repeat(21));
    let err = d.ctl_err(&["zone", "add", &long]);
    assert!(
        err.contains("InvalidArgument") && err.contains("at most 222"),
        "{err}"
    );
    d.ctl_ok(&["zone", "add", &long, "--denial", "nsec"]);
    d.ctl_ok(&["zone", "remove", &long, "--force"]);

    assert_eq!(snapshot(&d), before);
}

#[test]
fn orphaned_key_pairs_are_listed_and_only_orphans_are_destroyed() {
    let token = TestToken::new("orphans");
    let mut d = Daemon::start(&token, "node-a", &[]);
    d.ctl_ok(&["zone", "add", "orphans.test."]);
    assert!(d.ctl_ok(&["key", "orphans"]).contains("no orphaned keys"));
    // A key pair no record names (a record whose write never landed).
    let orphan = "0badc0ffee0badc0ffee0badc0ffee00";
    token.make_key_pair(orphan, "orphans.test-zsk-new");
    let list = d.ctl_ok(&["key", "orphans"]);
    assert!(
        list.contains(orphan) && list.contains("orphans.test-zsk-new"),
        "{list}"
    );
    let keys: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["key", "list", "orphans.test.", "--json"])).unwrap();
    let ksk = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == "ksk")
        .unwrap();
    let ksk_id = ksk["id"].as_str().unwrap();
    assert!(
        !list.contains(ksk_id),
        "a zone's key listed as an orphan: {list}"
    );

    // A zone's key is refused by name, and nothing at all is destroyed.
    let err = d.ctl_err(&["key", "orphans", "--destroy", orphan, "--destroy", ksk_id]);
    assert!(
        err.contains("FailedPrecondition")
            && err.contains("not an orphan; remove it with `key remove`"),
        "{err}"
    );
    assert!(token.list_objects().contains(&orphan.to_string()));
    // An id the token does not hold.
    let err = d.ctl_err(&["key", "orphans", "--destroy", "00ff"]);
    assert!(
        err.contains("NotFound") && err.contains("no private key with id"),
        "{err}"
    );

    let done = d.ctl_ok(&["key", "orphans", "--destroy", orphan]);
    assert!(
        done.contains("1 key pair(s) destroyed (2 token objects)"),
        "{done}"
    );
    assert!(!token.list_objects().contains(&orphan.to_string()));
    assert!(d.ctl_ok(&["key", "orphans"]).contains("no orphaned keys"));
    let audit = d.ctl_ok(&["audit"]);
    assert!(
        audit.contains("destroy-orphan") && audit.contains(orphan),
        "{audit}"
    );
    // The zone still signs.
    d.sign_validated("orphans.test.", &sample_zone("orphans.test.", 5));
    d.stop();
}

/// What a program reads from a refusal besides the message: the
/// google.rpc `ErrorInfo` reason (domain "keymaster") and, for a refused
/// request field, a `BadRequest` naming its path. A client decoding only
/// the standard details (tonic-types) gets them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_a_reason_code_and_the_field_path() {
    use tonic_types::StatusExt;
    let token = TestToken::new("error-details");
    let d = Daemon::start(&token, "node-ed", &[]);
    d.ctl_ok(&["zone", "add", "details.example."]);
    let reason_and_fields = |e: &tonic::Status| {
        let info = e.get_details_error_info().expect("an ErrorInfo");
        assert_eq!(info.domain, "keymaster", "{e:?}");
        let fields: Vec<String> = e
            .get_details_bad_request()
            .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
            .unwrap_or_default();
        (info.reason, fields)
    };
    let mut zones = d.zones_client().await;
    let e = zones
        .get_zone(proto::GetZoneRequest {
            zone: "nosuch.example.".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert_eq!(
        reason_and_fields(&e),
        ("ZONE_NAME_NOT_MANAGED".into(), vec![])
    );
    let e = zones
        .get_zone(proto::GetZoneRequest { zone: "".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        reason_and_fields(&e),
        ("ZONE_NAME_MISSING".into(), vec!["zone".to_string()])
    );
    let mut signer = d.signer_client().await;
    let mut rrset = a_rrset("www.details.example.", vec![(1, 300)]);
    rrset.rtype = 70_000;
    let e = signer
        .sign_rrsets(proto::SignRrsetsRequest {
            zone: "details.example.".into(),
            rrsets: vec![a_rrset("www.details.example.", vec![(1, 300)]), rrset],
            inception: 0,
            expiration: 0,
            include_text: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        reason_and_fields(&e),
        ("REQUEST_NOT_U16".into(), vec!["rrsets.rtype".to_string()])
    );
    assert!(e.message().contains("rrsets.rtype 70000"), "{e:?}");
    // A caller outside its role: the reason says so, the message names the right.
    let other = d.pki.client("reader-only");
    d.set_access(&format!(
        "{}\n[[grant]]\nname = \"reader-only\"\nroles = [\"reader\"]\n",
        default_access()
    ));
    let e = proto::zones_client::ZonesClient::new(d.channel_as(&other).await.unwrap())
        .add_zone(proto::AddZoneRequest {
            zone: "other.example.".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert_eq!(reason_and_fields(&e).0, "ACCESS_DENIED");
}

/// A token whose files went away: a key cannot be made, and both the
/// caller and the node's log say what was tried and what to check,
/// rather than a bare return value; nothing is recorded.
#[test]
fn a_token_that_cannot_store_keys_says_what_to_check() {
    let token = TestToken::new("no-files");
    let d = Daemon::start(&token, "node-nf", &[]);
    d.ctl_ok(&["zone", "add", "nofiles.example."]);
    let before = d.ctl_ok(&["key", "list", "nofiles.example.", "--json"]);
    let tokens = token.dir.path().join("tokens");
    let away = token.dir.path().join("tokens-away");
    std::fs::rename(&tokens, &away).unwrap();
    std::fs::create_dir(&tokens).unwrap();
    let err = d.ctl_err(&["key", "add", "nofiles.example.", "--role", "zsk"]);
    eprintln!("key add without the token's files: {err}");
    assert!(err.contains("PKCS#11 C_"), "{err}");
    assert!(err.contains("CKR_") && err.contains("check"), "{err}");
    assert!(
        d.log_text().contains("key generation in the token failed"),
        "{}",
        d.log_text()
    );
    std::fs::remove_dir(&tokens).unwrap();
    std::fs::rename(&away, &tokens).unwrap();
    assert_eq!(
        d.ctl_ok(&["key", "list", "nofiles.example.", "--json"]),
        before
    );
}
