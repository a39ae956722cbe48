//! Keys in the token, key and zone management, restarts and start-up errors.

use crate::common::*;

fn keys_json(d: &Daemon, zone: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["key", "list", zone, "--json"])).unwrap();
    v.as_array().unwrap().clone()
}

#[test]
fn private_keys_are_sensitive_and_never_extractable_token_objects() {
    let token = TestToken::new("attrs");
    let d = Daemon::start(&token, "a", &[]);
    d.ctl_ok(&["zone", "add", "attrs.example", "--algorithm", "ed25519"]);
    let keys = keys_json(&d, "attrs.example");
    let objects = token.list_objects();
    let privates: Vec<&str> = objects.split("Private Key Object").skip(1).collect();
    assert_eq!(privates.len(), 2, "{objects}");
    for p in &privates {
        let p = p.split("Public Key Object").next().unwrap();
        assert!(p.contains("sensitive"), "{p}");
        assert!(p.contains("never extractable"), "{p}");
        assert!(!p.contains(" extractable,") || p.contains("never extractable"));
    }
    for k in &keys {
        // The label names zone, role and key tag; the URI carries the id.
        let label = format!(
            "attrs.example-{}-{}",
            k["role"].as_str().unwrap(),
            k["key_tag"]
        );
        assert!(objects.contains(&label), "{label} not in {objects}");
        let uri = k["pkcs11_uri"].as_str().unwrap();
        assert!(
            uri.contains(&format!("object={label}")) && uri.contains("type=private"),
            "{uri}"
        );
    }
}

#[test]
fn keys_are_added_retired_and_removed_but_never_the_last_active_one() {
    let token = TestToken::new("keys");
    let d = Daemon::start(&token, "a", &[]);
    d.ctl_ok(&["zone", "add", "keys.example"]);
    let keys = keys_json(&d, "keys.example");
    let zsk = keys.iter().find(|k| k["role"] == "zsk").unwrap().clone();
    let ksk = keys.iter().find(|k| k["role"] == "ksk").unwrap().clone();
    let zsk_tag = zsk["key_tag"].to_string();

    // The last active ZSK and KSK can be neither retired nor removed.
    for verb in ["retire", "remove"] {
        let err = d.ctl_err(&["key", verb, "keys.example", &zsk_tag]);
        assert!(
            err.contains("FailedPrecondition") && err.contains("last active ZSK"),
            "{err}"
        );
        let err = d.ctl_err(&["key", verb, "keys.example", ksk["id"].as_str().unwrap()]);
        assert!(err.contains("last active KSK"), "{err}");
    }

    // A standby ZSK is published, not signing; the DNSKEY RRset shows it.
    let added: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["key", "add", "keys.example", "--role", "zsk", "--json"]))
            .unwrap();
    let new = &added[0];
    assert_eq!(new["state"], "published");
    let dnskeys = d.ctl_ok(&["dnskey", "keys.example"]);
    assert_eq!(
        dnskeys
            .lines()
            .filter(|l| l.contains("\tDNSKEY\t256"))
            .count(),
        2,
        "{dnskeys}"
    );

    // Activate by adding an active one, then retire and remove the old ZSK.
    d.ctl_ok(&["key", "add", "keys.example", "--role", "zsk", "--activate"]);
    // At once, that would break validation (caches may not hold the new
    // ZSK yet): refused with the earliest safe time and the safe way.
    let err = d.ctl_err(&["key", "retire", "keys.example", &zsk_tag]);
    assert!(
        err.contains("FailedPrecondition")
            && err.contains(&format!(
                "ZSK {zsk_tag} of keys.example. cannot be retired before 20"
            ))
            && err.contains("keymasterctl key roll keys.example.")
            && err.contains("--force"),
        "{err}"
    );
    let retired: serde_json::Value = serde_json::from_str(&d.ctl_ok(&[
        "key",
        "retire",
        "keys.example",
        &zsk_tag,
        "--force",
        "--json",
    ]))
    .unwrap();
    assert_eq!(retired[0]["state"], "retired");
    assert!(retired[0]["retired"].as_u64().unwrap() > 0);

    // The zone still signs and validates with the new ZSK; the retired one
    // is still published but signs nothing.
    let (_dir, output, _) = d.sign_validated("keys.example.", &sample_zone("keys.example", 20));
    let signed = std::fs::read_to_string(&output).unwrap();
    assert!(
        !signed.contains(&format!(" {zsk_tag} keys.example. ")),
        "retired key signed"
    );

    // Its signatures may still be in caches: removing it is refused too.
    let err = d.ctl_err(&["key", "remove", "keys.example", &zsk_tag]);
    assert!(err.contains("cannot be removed before 20"), "{err}");
    d.ctl_ok(&["key", "remove", "keys.example", &zsk_tag, "--force"]);
    let forced = d.audit_details("keys.example.", "retire");
    assert!(
        forced
            .iter()
            .any(|d| d.contains("(forced, before it was safe:")),
        "{forced:?}"
    );
    assert!(!token
        .list_objects()
        .contains(&format!("keys.example-zsk-{zsk_tag}")));
    assert_eq!(keys_json(&d, "keys.example").len(), 3);
    let err = d.ctl_err(&["key", "remove", "keys.example", "99999"]);
    assert!(err.contains("NotFound"), "{err}");
}

#[test]
fn removing_a_zone_needs_force_and_destroys_its_keys() {
    let token = TestToken::new("remove");
    let d = Daemon::start(&token, "a", &[]);
    d.ctl_ok(&["zone", "add", "gone.example"]);
    d.ctl_ok(&["zone", "add", "kept.example"]);
    let err = d.ctl_err(&["zone", "remove", "gone.example"]);
    assert!(err.contains("--force"), "{err}");
    assert!(token.list_objects().contains("gone.example-ksk"));
    let out = d.ctl_ok(&["zone", "remove", "gone.example", "--force"]);
    assert!(out.contains("2 keys destroyed"), "{out}");
    let objects = token.list_objects();
    assert!(!objects.contains("gone.example-"), "{objects}");
    assert!(objects.contains("kept.example-ksk"));
    let list = d.ctl_ok(&["zone", "list"]);
    assert!(
        !list.contains("gone.example") && list.contains("kept.example"),
        "{list}"
    );
}

#[test]
fn zones_and_keys_survive_a_restart_and_signing_still_works() {
    let token = TestToken::new("restart");
    let mut d = Daemon::start(&token, "a", &[]);
    d.ctl_ok(&["zone", "add", "keep.example", "--denial", "nsec"]);
    let before = d.ctl_ok(&["key", "list", "keep.example", "--json"]);
    let store = d.store.clone();
    assert!(
        d.stop(),
        "keymasterd did not stop on SIGTERM: {}",
        d.log_text()
    );
    assert!(d.log_text().contains("shutting down"));
    let dir = TempDir::new("restart-2");
    let d2 = Daemon::start_with_store(&token, "a", &store, dir, &[]);
    assert_eq!(
        d2.ctl_ok(&["key", "list", "keep.example", "--json"]),
        before
    );
    let show = d2.ctl_ok(&["zone", "show", "keep.example"]);
    assert!(show.contains("IsSigned") && show.contains("true"), "{show}");
    d2.sign_validated("keep.example.", &sample_zone("keep.example", 20));
}

#[test]
fn zone_show_has_the_windows_fields_in_text_and_json() {
    let token = TestToken::new("show");
    let d = Daemon::start(&token, "node-show", &[]);
    d.ctl_ok(&[
        "zone",
        "add",
        "show.example",
        "--denial",
        "nsec3",
        "--nsec3-iterations",
        "0",
        "--dnskey-ttl",
        "2h",
    ]);
    let text = d.ctl_ok(&["zone", "show", "show.example"]);
    for field in [
        "ZoneName",
        "KeyMasterServer",
        "IsKeyMasterServer",
        "KeyMasterStatus",
        "DenialOfExistence",
        "NSec3Iterations",
        "DnsKeyRecordSetTtl",
        "DSRecordSetTtl",
        "DSRecordGenerationAlgorithm",
        "ZoneSignatureValidityPeriod",
        "SignatureInceptionOffset",
        "PropagationTime",
        "IsSigned",
        "Epoch",
    ] {
        assert!(text.contains(field), "{field} missing from {text}");
    }
    let v: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["zone", "show", "show.example", "--json"])).unwrap();
    assert_eq!(v["KeyMasterServer"], "node-show");
    assert_eq!(v["IsKeyMasterServer"], true);
    assert_eq!(v["DnsKeyRecordSetTtl"], 7200);
    assert_eq!(v["DenialOfExistence"], "NSec3");
    assert_eq!(v["Epoch"], 1);
    assert_eq!(v["IsSigned"], true);
}

/// Runs keymasterd expecting it to fail at start; returns stderr.
fn start_fails(token: &TestToken, args: &[&str]) -> String {
    let out = std::process::Command::new(keymasterd())
        .env("SOFTHSM2_CONF", &token.conf)
        .env_remove("KEYMASTER_PIN")
        .args([
            "--node-id",
            "x",
            "--listen",
            "127.0.0.1:0",
            "--insecure-plaintext",
        ])
        .args(args)
        .output()
        .expect("run keymasterd");
    assert!(!out.status.success(), "keymasterd started with {args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn start_up_errors_are_one_clear_line() {
    let token = TestToken::new("startup");
    let dir = TempDir::new("startup");
    let store = format!("sqlite:{}", dir.path().join("db").display());
    let pin = token.pin_file.to_str().unwrap().to_string();
    let label = token.label.clone();

    let e = start_fails(
        &token,
        &[
            "--pkcs11-module",
            "/nonexistent/libp11.so",
            "--token-label",
            &label,
            "--pin-file",
            &pin,
            "--store",
            &store,
        ],
    );
    assert!(
        e.contains("PKCS#11 module /nonexistent/libp11.so could not be loaded"),
        "{e}"
    );
    assert_eq!(e.trim().lines().count(), 1, "{e}");

    let e = start_fails(
        &token,
        &[
            "--token-label",
            "no-such-token",
            "--pin-file",
            &pin,
            "--store",
            &store,
        ],
    );
    assert!(
        e.contains("no token matches") && e.contains("no-such-token"),
        "{e}"
    );

    let wrong = dir.path().join("wrong-pin");
    std::fs::write(&wrong, "9999\n").unwrap();
    std::fs::set_permissions(&wrong, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let e = start_fails(
        &token,
        &[
            "--token-label",
            &label,
            "--pin-file",
            wrong.to_str().unwrap(),
            "--store",
            &store,
        ],
    );
    assert!(e.contains("PIN") && e.contains("wrong"), "{e}");
    assert!(!e.contains("9999"), "the PIN must never be printed: {e}");

    let e = start_fails(
        &token,
        &[
            "--token-label",
            &label,
            "--pin-file",
            &pin,
            "--store",
            "sqlite:/proc/keymaster/db",
        ],
    );
    assert!(
        e.contains("store sqlite:/proc/keymaster/db is not usable"),
        "{e}"
    );

    let open = dir.path().join("open-pin");
    std::fs::write(&open, "1234\n").unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let e = start_fails(
        &token,
        &[
            "--token-label",
            &label,
            "--pin-file",
            open.to_str().unwrap(),
            "--store",
            &store,
        ],
    );
    assert!(e.contains("accessible to every user"), "{e}");

    let e = start_fails(&token, &["--pin-file", &pin, "--store", &store]);
    assert!(e.contains("no token given"), "{e}");
}
