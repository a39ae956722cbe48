//! Security: mutual TLS, roles per zone, the audit log and per-caller limits,
//! with certificates made at test time.

use std::str::FromStr;

use crate::common::*;
use domain::base::name::Name;
use keymaster::proto;
use keymaster::proto::audit_client::AuditClient;
use keymaster::proto::key_master_client::KeyMasterClient;
use keymaster::proto::signer_client::SignerClient;
use keymaster::proto::zones_client::ZonesClient;
use tonic::Code;

fn wire(name: &str) -> Vec<u8> {
    Name::<Vec<u8>>::from_str(name).unwrap().as_slice().to_vec()
}

fn a_rrset(owner: &str) -> proto::Rrset {
    proto::Rrset {
        owner: wire(owner),
        rtype: 1,
        records: vec![proto::RecordData {
            rclass: 1,
            ttl: 300,
            rdata: vec![192, 0, 2, 1],
        }],
    }
}

fn sign_req(zone: &str, n: usize) -> proto::SignRrsetsRequest {
    proto::SignRrsetsRequest {
        zone: zone.into(),
        rrsets: (0..n).map(|i| a_rrset(&format!("h{i}.{zone}"))).collect(),
        inception: 0,
        expiration: 0,
        include_text: false,
    }
}

const ACCESS: &str = r#"
[[grant]]
name = "admin.test"
roles = ["admin"]
[[grant]]
name = "ns1.test"
roles = ["signer"]
zones = ["a.example"]
[[grant]]
name = "reader.test"
roles = ["reader"]
[[grant]]
name = "reader-a.test"
roles = ["reader"]
zones = ["a.example"]
[[grant]]
name = "node.test"
roles = ["node"]
"#;

/// Every RPC, called by `who`; returns the status code of each (Ok = Code::Ok).
async fn call_every_rpc(d: &Daemon, who: &ClientCert) -> Vec<(&'static str, Code)> {
    let ch = d
        .channel_as(who)
        .await
        .expect("TLS connection with a valid certificate");
    let mut signer = SignerClient::new(ch.clone());
    let mut zones = ZonesClient::new(ch.clone());
    let mut audit = AuditClient::new(ch.clone());
    let mut roles = KeyMasterClient::new(ch);
    let code = |r: Result<(), tonic::Status>| r.err().map_or(Code::Ok, |s| s.code());
    let mut out = Vec::new();
    out.push((
        "SignRrsets(A)",
        code(
            signer
                .sign_rrsets(sign_req("a.example.", 1))
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "SignRrsets(B)",
        code(
            signer
                .sign_rrsets(sign_req("b.example.", 1))
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "GetDnskeys(A)",
        code(
            signer
                .get_dnskeys(proto::GetDnskeysRequest {
                    zone: "a.example.".into(),
                })
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "GetCds(A)",
        code(
            signer
                .get_cds(proto::GetCdsRequest {
                    zone: "a.example.".into(),
                })
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "GetSigningParameters(A)",
        code(
            signer
                .get_signing_parameters(proto::GetSigningParametersRequest {
                    zone: "a.example.".into(),
                })
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "WatchKeySet(A)",
        code(
            signer
                .watch_key_set(proto::WatchKeySetRequest {
                    zone: "a.example.".into(),
                })
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "GetSigningParameters(B)",
        code(
            signer
                .get_signing_parameters(proto::GetSigningParametersRequest {
                    zone: "b.example.".into(),
                })
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "GetDs(A)",
        code(
            signer
                .get_ds(proto::GetDsRequest {
                    zone: "a.example.".into(),
                    digests: vec![],
                })
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "GetDs(B)",
        code(
            signer
                .get_ds(proto::GetDsRequest {
                    zone: "b.example.".into(),
                    digests: vec![],
                })
                .await
                .map(|_| ()),
        ),
    ));
    // Management calls with arguments that fail after the access check, so
    // that an allowed call changes nothing.
    out.push((
        "AddZone",
        code(
            zones
                .add_zone(proto::AddZoneRequest {
                    zone: "new.example".into(),
                    policy: Some(proto::ZonePolicy {
                        algorithm: 5,
                        ..Default::default()
                    }),
                    key_master: String::new(),
                    fields: Vec::new(),
                })
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "GetZone",
        code(
            zones
                .get_zone(proto::GetZoneRequest {
                    zone: "a.example".into(),
                })
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "GetZone(B)",
        code(
            zones
                .get_zone(proto::GetZoneRequest {
                    zone: "b.example".into(),
                })
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "ListZones",
        code(
            zones
                .list_zones(proto::ListZonesRequest {})
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "RemoveZone",
        code(
            zones
                .remove_zone(proto::RemoveZoneRequest {
                    zone: "nowhere.example".into(),
                    force: true,
                })
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "ListKeys",
        code(
            zones
                .list_keys(proto::ListKeysRequest {
                    zone: "a.example".into(),
                })
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "AddKey",
        code(
            zones
                .add_key(proto::AddKeyRequest {
                    zone: "a.example".into(),
                    role: "bogus".into(),
                    activate: false,
                })
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "RetireKey",
        code(
            zones
                .retire_key(proto::KeyRequest {
                    zone: "a.example".into(),
                    key: "99999".into(),
                    force: false,
                })
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "RemoveKey",
        code(
            zones
                .remove_key(proto::KeyRequest {
                    zone: "a.example".into(),
                    key: "99999".into(),
                    force: false,
                })
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "SetZone",
        code(
            zones
                .set_zone(proto::SetZoneRequest {
                    zone: "a.example".into(),
                    policy: None,
                    fields: vec!["no_such_setting".into()],
                })
                .await
                .map(|_| ()),
        ),
    ));
    for (name, call) in [("RollKey", 0), ("StepKey", 1)] {
        let r = proto::KeyRequest {
            zone: "a.example".into(),
            key: "99999".into(),
            force: false,
        };
        let result = if call == 0 {
            zones.roll_key(r).await.map(|_| ())
        } else {
            zones.step_key(r).await.map(|_| ())
        };
        out.push((name, code(result)));
    }
    out.push((
        "PauseZone",
        code(
            zones
                .pause_zone(proto::PauseZoneRequest {
                    zone: "nowhere.example".into(),
                    paused: true,
                })
                .await
                .map(|_| ()),
        ),
    ));
    for (name, zone) in [("SignZone(A)", "a.example."), ("SignZone(B)", "b.example.")] {
        let msgs = vec![
            proto::SignZoneRequest {
                msg: Some(proto::sign_zone_request::Msg::Start(proto::SignZoneStart {
                    zone: zone.into(),
                    inception: 0,
                    expiration: 0,
                })),
            },
            proto::SignZoneRequest {
                msg: Some(proto::sign_zone_request::Msg::Chunk(
                    format!("{zone} 300 IN SOA ns1.{zone} h.{zone} 1 2 3 4 5\n").into_bytes(),
                )),
            },
        ];
        let r = zones.sign_zone(tokio_stream::iter(msgs)).await;
        let c = match r {
            Err(s) => s.code(),
            Ok(resp) => {
                let mut stream = resp.into_inner();
                let mut c = Code::Ok;
                loop {
                    match stream.message().await {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(s) => {
                            c = s.code();
                            break;
                        }
                    }
                }
                c
            }
        };
        out.push((name, c));
    }
    out.push((
        "ListAudit",
        code(
            audit
                .list_audit(proto::ListAuditRequest {
                    zone: String::new(),
                    since: 0,
                })
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "ListNodes",
        code(
            roles
                .list_nodes(proto::ListNodesRequest {})
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "ShowRole",
        code(
            roles
                .show_role(proto::RoleRequest {
                    zone: "a.example".into(),
                })
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "Candidates",
        code(
            roles
                .candidates(proto::RoleRequest {
                    zone: "a.example".into(),
                })
                .await
                .map(|_| ()),
        ),
    ));
    // To a node that does not exist: refused after the access check.
    let nobody = || proto::MoveRoleRequest {
        zone: "a.example".into(),
        to: "no-such-node".into(),
        force: false,
    };
    out.push(("Transfer", code(roles.transfer(nobody()).await.map(|_| ()))));
    out.push(("Seize", code(roles.seize(nobody()).await.map(|_| ()))));
    out.push((
        "Rekey",
        code(
            roles
                .rekey(proto::RoleRequest {
                    zone: "a.example".into(),
                })
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "MissingKeys",
        code(
            roles
                .missing_keys(proto::MissingKeysRequest {
                    key_ids: vec!["00".into()],
                })
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "Release",
        code(
            roles
                .release(proto::ReleaseRequest {
                    zone: "a.example".into(),
                    epoch: 999,
                    to: "no-such-node".into(),
                })
                .await
                .map(|_| ()),
        ),
    ));
    out.push((
        "VerifyAudit",
        code(
            audit
                .verify_audit(proto::VerifyAuditRequest {})
                .await
                .map(|_| ()),
        ),
    ));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_checks_every_role() {
    let token = TestToken::new("matrix");
    let d = Daemon::start(&token, "a", &[]);
    d.set_access(ACCESS);
    d.ctl_ok(&["zone", "add", "a.example"]);
    d.ctl_ok(&["zone", "add", "b.example"]);

    // Which calls each identity may make.
    let all: Vec<&str> = vec![
        "SignRrsets(A)",
        "SignRrsets(B)",
        "GetDnskeys(A)",
        "GetCds(A)",
        "GetSigningParameters(A)",
        "WatchKeySet(A)",
        "GetSigningParameters(B)",
        "GetDs(A)",
        "GetDs(B)",
        "AddZone",
        "GetZone",
        "GetZone(B)",
        "ListZones",
        "RemoveZone",
        "ListKeys",
        "AddKey",
        "RetireKey",
        "RemoveKey",
        "SetZone",
        "RollKey",
        "StepKey",
        "PauseZone",
        "SignZone(A)",
        "SignZone(B)",
        "ListNodes",
        "ShowRole",
        "Candidates",
        "Transfer",
        "Seize",
        "Rekey",
        "MissingKeys",
        "Release",
        "ListAudit",
        "VerifyAudit",
    ];
    // Only nodes ask each other's tokens or release a zone; an admin is
    // not a node.
    let admin: Vec<&str> = all
        .iter()
        .copied()
        .filter(|rpc| !matches!(*rpc, "MissingKeys" | "Release"))
        .collect();
    // A reader with zones reads those only: nothing of B, and nothing that
    // is not one zone's (nodes, the whole chain).
    let reader_a = vec![
        "GetDnskeys(A)",
        "GetCds(A)",
        "GetSigningParameters(A)",
        "WatchKeySet(A)",
        "GetDs(A)",
        "GetZone",
        "ListZones",
        "ListKeys",
        "ShowRole",
        "Candidates",
        "ListAudit",
    ];
    let matrix: Vec<(&str, Vec<&str>)> = vec![
        ("admin.test", admin),
        (
            "ns1.test",
            vec![
                "SignRrsets(A)",
                "GetDnskeys(A)",
                "GetCds(A)",
                "GetSigningParameters(A)",
                "WatchKeySet(A)",
                "GetDs(A)",
                "SignZone(A)",
            ],
        ),
        (
            "reader.test",
            vec![
                "GetDnskeys(A)",
                "GetCds(A)",
                "GetSigningParameters(A)",
                "WatchKeySet(A)",
                "GetSigningParameters(B)",
                "GetDs(A)",
                "GetDs(B)",
                "GetZone",
                "GetZone(B)",
                "ListZones",
                "ListKeys",
                "ListNodes",
                "ShowRole",
                "Candidates",
                "ListAudit",
                "VerifyAudit",
            ],
        ),
        ("reader-a.test", reader_a),
        ("node.test", vec!["MissingKeys", "Release"]),
        ("stranger.test", vec![]),
    ];
    for (name, allowed) in &matrix {
        let cert = d.pki.client(name);
        let results = call_every_rpc(&d, &cert).await;
        assert_eq!(results.len(), all.len());
        for (rpc, code) in results {
            if allowed.contains(&rpc) {
                assert!(
                    code != Code::PermissionDenied && code != Code::Unauthenticated,
                    "{name} should be allowed {rpc}, got {code:?}"
                );
            } else {
                assert_eq!(
                    code,
                    Code::PermissionDenied,
                    "{name} should be denied {rpc}"
                );
            }
        }
    }
    // Nothing changed: still two zones with two keys each.
    let zones = d.ctl_ok(&["zone", "list"]);
    assert!(
        zones.contains("a.example.")
            && zones.contains("b.example.")
            && !zones.contains("new.example")
    );

    // A reader with zones lists only its zones, and sees only their part
    // of the audit log.
    let reader_a = d.pki.client("reader-a.test");
    let listed = d.ctl_as(&reader_a, &["zone", "list", "--json"]);
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listed.contains("a.example.") && !listed.contains("b.example."),
        "{listed}"
    );
    let log = d.ctl_as(&reader_a, &["audit", "--json"]);
    assert!(log.status.success());
    let log = String::from_utf8_lossy(&log.stdout).to_string();
    assert!(log.lines().count() > 0);
    for l in log.lines() {
        let e: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(e["zone"], "a.example.", "{l}");
    }

    // The denial names the missing right; a signer for A cannot sign for B.
    let ns1 = d.pki.client("ns1.test");
    let mut signer = SignerClient::new(d.channel_as(&ns1).await.unwrap());
    let e = signer
        .sign_rrsets(sign_req("b.example.", 1))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(
        e.message().contains("ns1.test may not sign for b.example."),
        "{}",
        e.message()
    );
    // … and it can for A, getting a real signature.
    let ok = signer
        .sign_rrsets(sign_req("a.example.", 2))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.signatures.len(), 2);

    // Refusals are in the audit log, with the caller's identity.
    let log = d.ctl_ok(&["audit", "--json"]);
    assert!(
        log.lines().any(|l| l.contains("\"caller\":\"ns1.test\"")
            && l.contains("refused: ns1.test may not sign for b.example.")),
        "{log}"
    );
    assert!(log
        .lines()
        .any(|l| l.contains("\"caller\":\"stranger.test\"") && l.contains("refused")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_certificates_are_refused_at_the_handshake() {
    let token = TestToken::new("certs");
    let d = Daemon::start(&token, "a", &[]);
    d.ctl_ok(&["zone", "add", "a.example"]);

    let expired = d.pki.issue("expired", &[ADMIN], Some(ADMIN), true);
    let foreign = d.pki.foreign_client(ADMIN);
    for (what, cert) in [("expired", &expired), ("other CA", &foreign)] {
        let r = match d.channel_as(cert).await {
            Err(e) => Err(e),
            Ok(ch) => ZonesClient::new(ch)
                .list_zones(proto::ListZonesRequest {})
                .await
                .map(|_| ())
                .map_err(|s| format!("{:?} {}", s.code(), s.message())),
        };
        assert!(
            r.is_err(),
            "a client with an {what} certificate got through"
        );
        let err = d.ctl_as(cert, &["zone", "list"]);
        assert!(
            !err.status.success(),
            "keymasterctl with an {what} certificate succeeded"
        );
    }

    // No client certificate at all.
    let tls = tonic::transport::ClientTlsConfig::new().ca_certificate(
        tonic::transport::Certificate::from_pem(std::fs::read(&d.pki.ca_pem).unwrap()),
    );
    let ch = tonic::transport::Endpoint::from_shared(d.url())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await;
    let refused = match ch {
        Err(_) => true,
        Ok(ch) => ZonesClient::new(ch)
            .list_zones(proto::ListZonesRequest {})
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate got through");

    // Plaintext to a TLS server fails too.
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{}", d.addr))
        .unwrap()
        .connect()
        .await;
    let refused = match plain {
        Err(_) => true,
        Ok(ch) => ZonesClient::new(ch)
            .list_zones(proto::ListZonesRequest {})
            .await
            .is_err(),
    };
    assert!(refused, "a plaintext client got through");
    // The valid admin certificate still works.
    d.ctl_ok(&["zone", "list"]);
}

#[test]
fn access_changes_take_effect_on_sighup_without_restart() {
    let token = TestToken::new("reload");
    let d = Daemon::start(&token, "a", &[]);
    let ops = d.pki.client("ops.test");
    let err =
        String::from_utf8_lossy(&d.ctl_as(&ops, &["zone", "add", "r.example"]).stderr).to_string();
    assert!(
        err.contains("PermissionDenied") && err.contains("ops.test may not manage"),
        "{err}"
    );
    d.set_access(&format!(
        "{}[[grant]]\nname = \"ops.test\"\nroles = [\"admin\"]\n",
        default_access()
    ));
    let out = d.ctl_as(&ops, &["zone", "add", "r.example"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A broken access file keeps the old rules.
    d.set_access("this is not toml [[[");
    assert!(d
        .ctl_as(&ops, &["zone", "show", "r.example"])
        .status
        .success());
    assert!(d.log_text().contains("access file not reloaded"));
}

#[test]
fn audit_log_records_key_events_and_detects_tampering() {
    let token = TestToken::new("audit");
    let d = Daemon::start(&token, "node-1", &[]);
    d.ctl_ok(&["zone", "add", "au.example"]);
    d.ctl_ok(&["key", "add", "au.example", "--role", "zsk"]);
    let keys: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["key", "list", "au.example", "--json"])).unwrap();
    let standby = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["state"] == "published")
        .unwrap()["key_tag"]
        .to_string();
    d.ctl_ok(&["key", "remove", "au.example", &standby]);
    let err = d.ctl_err(&["key", "remove", "au.example", "99999"]);
    assert!(err.contains("NotFound"));

    let log = d.ctl_ok(&["audit", "--zone", "au.example", "--json"]);
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["generate", "generate+publish", "delete", "RemoveKey"],
        "{log}"
    );
    for e in &entries {
        assert_eq!(e["node"], "node-1");
        assert_eq!(e["caller"], ADMIN);
        assert_eq!(e["zone"], "au.example.");
        assert!(e["time"].as_u64().unwrap() > 1_700_000_000);
    }
    assert!(entries[3]["outcome"]
        .as_str()
        .unwrap()
        .starts_with("refused: "));
    assert!(d.ctl_ok(&["audit", "verify"]).contains("intact: 4 entries"));

    // Tamper with entry 2 in the store: verification names it.
    let db = d.store.strip_prefix("sqlite:").unwrap();
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute(
        "UPDATE audit SET entry = replace(entry, 'generate+publish', 'generate+activate') WHERE seq = 2",
        [],
    )
    .unwrap();
    let out = d.ctl(&["audit", "verify"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("TAMPERED: entry 2"), "{text}");

    // Deleting an entry is detected as well.
    conn.execute("DELETE FROM audit WHERE seq = 3", []).unwrap();
    let text = String::from_utf8_lossy(&d.ctl(&["audit", "verify"]).stdout).to_string();
    assert!(text.contains("TAMPERED"), "{text}");
}

#[test]
fn key_changes_are_refused_when_the_audit_log_cannot_be_written() {
    let token = TestToken::new("failclosed");
    let dir = TempDir::new("failclosed");
    let audit_file = dir.path().join("audit.jsonl");
    let d = Daemon::start(&token, "a", &["--audit-file", audit_file.to_str().unwrap()]);
    d.ctl_ok(&["zone", "add", "fc.example"]);
    let lines = std::fs::read_to_string(&audit_file).unwrap();
    assert_eq!(
        lines.lines().count(),
        1,
        "the audit file gets every entry: {lines}"
    );
    let keys_before = d.ctl_ok(&["key", "list", "fc.example", "--json"]);
    let objects_before = token.list_objects();

    // The audit file becomes unwritable (a directory in its place).
    std::fs::remove_file(&audit_file).unwrap();
    std::fs::create_dir(&audit_file).unwrap();
    let err = d.ctl_err(&["key", "add", "fc.example", "--role", "zsk"]);
    assert!(
        err.contains("Unavailable") && err.contains("audit log cannot be written"),
        "{err}"
    );
    let err = d.ctl_err(&["zone", "add", "other.example"]);
    assert!(err.contains("audit log cannot be written"), "{err}");

    // Nothing changed: no key record, no key in the token, no zone.
    assert_eq!(
        d.ctl_ok(&["key", "list", "fc.example", "--json"]),
        keys_before
    );
    assert_eq!(token.list_objects(), objects_before);
    assert!(!d.ctl_ok(&["zone", "list"]).contains("other.example"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_caller_limits_are_refused_with_their_names() {
    let token = TestToken::new("limits2");
    let d = Daemon::start(
        &token,
        "a",
        &[
            "--max-streams-per-caller",
            "1",
            "--sign-rate-per-caller",
            "10",
        ],
    );
    d.ctl_ok(&["zone", "add", "lim.example"]);
    let mut signer = d.signer_client().await;
    signer
        .sign_rrsets(sign_req("lim.example.", 10))
        .await
        .expect("within the rate");
    let e = signer
        .sign_rrsets(sign_req("lim.example.", 10))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(
        e.message().contains("sign_rate_per_caller"),
        "{}",
        e.message()
    );

    // One open zone-signing stream is the limit: a second one is refused.
    let zones = d.zones_client().await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(proto::SignZoneRequest {
        msg: Some(proto::sign_zone_request::Msg::Start(proto::SignZoneStart {
            zone: "lim.example".into(),
            inception: 0,
            expiration: 0,
        })),
    })
    .await
    .unwrap();
    let first = tokio::spawn(async move {
        let mut z = zones;
        z.sign_zone(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    // Until the service has taken the first stream's slot, a second stream
    // fails for its own reasons (an empty zone); then the limit shows.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = d.ctl(&[
            "zone",
            "sign",
            "lim.example",
            "--in",
            "/dev/null",
            "--out",
            "-",
        ]);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success());
        if err.contains("ResourceExhausted") {
            assert!(err.contains("max_streams_per_caller"), "{err}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stream limit never showed: {err}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drop(tx);
    let _ = first.await;
}
