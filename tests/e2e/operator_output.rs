//! What an operator reads: text output gives times as RFC 3339 in UTC and
//! durations in units; `--json` keeps the machine forms (Unix seconds,
//! seconds).

use crate::common::*;

/// Whether a word is an RFC 3339 UTC time of this century.
fn is_rfc3339(word: &str) -> bool {
    let b = word.as_bytes();
    b.len() == 20
        && word.starts_with("20")
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
}

fn field<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(" : ")?;
            (k.trim() == name).then(|| v.trim())
        })
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

#[test]
fn text_output_shows_times_as_rfc3339_and_durations_in_units() {
    let token = TestToken::new("output");
    let d = Daemon::start(&token, "node-a", &[]);
    d.ctl_ok(&["zone", "add", "readable.test."]);

    let show = d.ctl_ok(&["zone", "show", "readable.test."]);
    assert!(is_rfc3339(field(&show, "KeyMasterSince")), "{show}");
    assert_eq!(field(&show, "LastZskRolloverTime"), "-", "{show}");
    assert_eq!(field(&show, "ZoneSignatureValidityPeriod"), "10d", "{show}");
    assert_eq!(field(&show, "DnsKeyRecordSetTtl"), "1h", "{show}");
    let json: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["zone", "show", "readable.test.", "--json"])).unwrap();
    let since = json["KeyMasterSince"]
        .as_u64()
        .expect("Unix seconds in JSON");
    assert!(since > 1_700_000_000, "{json:#}");
    assert_eq!(json["ZoneSignatureValidityPeriod"], 864_000);

    let role = d.ctl_ok(&["role", "show", "readable.test."]);
    assert!(is_rfc3339(field(&role, "KeyMasterSince")), "{role}");

    // Key list: the CREATED column.
    let keys = d.ctl_ok(&["key", "list", "readable.test."]);
    let rows: Vec<&str> = keys.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{keys}");
    for row in rows {
        assert!(row.split_whitespace().any(is_rfc3339), "{row}");
    }

    // The audit log's time column, and the node list's LAST SEEN.
    let audit = d.ctl_ok(&["audit", "--zone", "readable.test."]);
    let first = audit.lines().next().expect("an audit entry");
    assert!(
        is_rfc3339(first.split_whitespace().nth(1).unwrap()),
        "{audit}"
    );
    let nodes = d.ctl_ok(&["node", "list"]);
    assert!(
        nodes
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .any(is_rfc3339),
        "{nodes}"
    );
}

/// An explicit zero is a value, in `zone add` as in `zone set`; output
/// into a pipe whose reader has gone ends keymasterctl quietly.
#[test]
fn zone_add_and_zone_set_take_a_zero_alike_and_a_closed_pipe_is_quiet() {
    let token = TestToken::new("zeroes");
    let d = Daemon::start(&token, "node-z", &[]);
    d.ctl_ok(&[
        "zone",
        "add",
        "zero.test.",
        "--rfc5011",
        "--add-hold-down",
        "0s",
        "--remove-hold-down",
        "0s",
    ]);
    let added: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["zone", "show", "zero.test.", "--json"])).unwrap();
    d.ctl_ok(&["zone", "add", "set.test.", "--rfc5011"]);
    d.ctl_ok(&[
        "zone",
        "set",
        "set.test.",
        "--add-hold-down",
        "0s",
        "--remove-hold-down",
        "0s",
    ]);
    let set: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["zone", "show", "set.test.", "--json"])).unwrap();
    for v in [&added, &set] {
        assert_eq!(v["Rfc5011AddHoldDown"], 0, "{v:#}");
        assert_eq!(v["Rfc5011RemoveHoldDown"], 0, "{v:#}");
    }
    // A flag not given keeps its default in both.
    assert_eq!(added["DnsKeyRecordSetTtl"], 3600, "{added:#}");

    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            // `true` reads nothing and is gone by the time keymasterctl
            // has its answer: the first write meets a closed pipe.
            "{} --server {} --ca {} --cert {} --key {} zone show zero.test. | true",
            keymasterctl_bin(),
            d.url(),
            d.pki.ca_pem.display(),
            d.admin.cert.display(),
            d.admin.key.display()
        ))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains("panicked") && said.is_empty(), "{said}");
}

/// `keymasterd --check-config` with a node's settings, and `change` applied
/// to them: (exit code, stdout, stderr).
fn check_config(token: &TestToken, pki: &Pki, change: &[(&str, &str)]) -> (i32, String, String) {
    let dir = TempDir::new("check-config");
    let access = dir.path().join("access.toml");
    std::fs::write(&access, default_access()).unwrap();
    let store = format!("sqlite:{}", dir.path().join("never.db").display());
    let mut args: Vec<(String, String)> = [
        ("--node-id", "checked".to_string()),
        ("--listen", "127.0.0.1:0".to_string()),
        ("--pkcs11-module", MODULE.to_string()),
        ("--token-label", token.label.clone()),
        ("--pin-file", token.pin_file.display().to_string()),
        ("--store", store),
        ("--tls-cert", pki.server_cert.display().to_string()),
        ("--tls-key", pki.server_key.display().to_string()),
        ("--tls-client-ca", pki.ca_pem.display().to_string()),
        ("--access-file", access.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in change {
        match args.iter_mut().find(|(a, _)| a == k) {
            Some(slot) => slot.1 = v.to_string(),
            None => args.push((k.to_string(), v.to_string())),
        }
    }
    let out = std::process::Command::new(keymasterd())
        .env("SOFTHSM2_CONF", &token.conf)
        .env_remove("KEYMASTER_PIN")
        .arg("--check-config")
        .args(args.iter().flat_map(|(k, v)| [k.clone(), v.clone()]))
        .output()
        .expect("run keymasterd --check-config");
    assert!(
        !dir.path().join("never.db").exists(),
        "--check-config created the store"
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_validates_without_starting_and_names_what_is_wrong() {
    let token = TestToken::new("check-config");
    let pki = Pki::new();
    let (code, out, err) = check_config(&token, &pki, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("configuration OK: node checked"), "{out}");
    assert!(
        out.contains(&format!("token {} (serial", token.label)),
        "{out}"
    );

    let dir = TempDir::new("check-config-bad");
    let wrong_pin = dir.path().join("pin");
    std::fs::write(&wrong_pin, "999999\n").unwrap();
    std::fs::set_permissions(
        &wrong_pin,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![("--pin-file", wrong_pin.display().to_string())], "PIN"),
        (
            vec![("--tls-cert", "/nonexistent/server.pem".to_string())],
            "/nonexistent/server.pem",
        ),
        (
            vec![("--listen", "not-an-address".to_string())],
            "gRPC listen address not-an-address",
        ),
        (
            vec![("--tsig-keys", wrong_pin.display().to_string())],
            "TSIG key file",
        ),
    ];
    for (change, named) in cases {
        let change: Vec<(&str, &str)> = change.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (code, out, err) = check_config(&token, &pki, &change);
        assert_eq!(code, 2, "{change:?}: {out}{err}");
        assert!(err.contains(named), "{change:?}: {err}");
    }
}

#[test]
fn keymasterctl_prints_shell_completions_that_bash_takes() {
    let out = std::process::Command::new(keymasterctl_bin())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(
        script.contains("source") && script.contains("rekey"),
        "{script}"
    );
    let dir = TempDir::new("completions");
    let file = dir.path().join("keymasterctl.bash");
    std::fs::write(&file, &script).unwrap();
    // Loaded by bash, it completes `keymasterctl zo` to `zone`.
    let probe = format!(
        "source {}; COMP_WORDS=(keymasterctl zo); COMP_CWORD=1; _keymasterctl keymasterctl zo keymasterctl; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &probe])
        .output()
        .unwrap();
    let replies = String::from_utf8_lossy(&out.stdout);
    assert!(
        replies.lines().any(|l| l == "zone"),
        "{replies}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn with_log_format_json_every_log_line_is_a_json_object() {
    let token = TestToken::new("json-log");
    let d = Daemon::start(&token, "node-j", &["--log-format", "json"]);
    d.ctl_ok(&["zone", "add", "json.test."]);
    let log = d.log_text();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "{log}");
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(
            v["level"].is_string() && v["fields"]["message"].is_string(),
            "{l}"
        );
    }
    assert!(
        lines.iter().any(|l| l.contains("keymasterd listening")),
        "{log}"
    );
    // And a format that is neither is refused by name.
    let out = std::process::Command::new(keymasterd())
        .env("SOFTHSM2_CONF", &token.conf)
        .args(["--log-format", "yaml", "--insecure-plaintext", "--pin-file"])
        .arg(&token.pin_file)
        .args(["--token-label", &token.label])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("log format \"yaml\" is not text or json")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_is_echoed_logged_audited_and_passed_to_the_key_master() {
    let token = TestToken::new("request-id");
    let pki = std::sync::Arc::new(Pki::new());
    let dir = TempDir::new("request-id-store");
    let store = format!("sqlite:{}", dir.path().join("keymaster.db").display());
    let a = Daemon::start_node(&token, "node-a", &store, &pki, &[]);
    let b = Daemon::start_node(&token, "node-b", &store, &pki, &[]);
    a.ctl_ok(&["zone", "add", "rid.test."]);

    // The caller's id, sent to node-b; the call goes on to the Key Master.
    let mut request = tonic::Request::new(keymaster::proto::SetZoneRequest {
        zone: "rid.test.".into(),
        policy: Some(keymaster::proto::ZonePolicy {
            dnskey_ttl: 1800,
            ..Default::default()
        }),
        fields: vec!["dnskey_ttl".into()],
    });
    request
        .metadata_mut()
        .insert("x-request-id", "ops-change-4711".parse().unwrap());
    let response = b.zones_client().await.set_zone(request).await.unwrap();
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "ops-change-4711"
    );
    assert!(
        b.log_text().contains("request_id=ops-change-4711"),
        "{}",
        b.log_text()
    );
    // The Key Master wrote the change's audit entry under the same id.
    let audit = a.ctl_ok(&["audit", "--zone", "rid.test.", "--json"]);
    let entry = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["request_id"] == "ops-change-4711")
        .unwrap_or_else(|| panic!("no audit entry with the request id: {audit}"));
    assert_eq!(entry["node"], "node-a", "{entry}");
    // The chain still verifies with the new field in it.
    a.ctl_ok(&["audit", "verify"]);

    // A zone signing's entry, written by its blocking thread, and the log
    // line saying the zone was signed carry the caller's id too.
    use keymaster::proto::{sign_zone_request::Msg, SignZoneRequest, SignZoneStart};
    let messages = vec![
        SignZoneRequest {
            msg: Some(Msg::Start(SignZoneStart {
                zone: "rid.test.".into(),
                inception: 0,
                expiration: 0,
            })),
        },
        SignZoneRequest {
            msg: Some(Msg::Chunk(sample_zone("rid.test.", 5).into_bytes())),
        },
    ];
    let mut request = tonic::Request::new(tokio_stream::iter(messages));
    request
        .metadata_mut()
        .insert("x-request-id", "sign-run-0815".parse().unwrap());
    let mut answers = a
        .zones_client()
        .await
        .sign_zone(request)
        .await
        .unwrap()
        .into_inner();
    while let Some(m) = answers.message().await.unwrap() {
        drop(m);
    }
    let audit = a.ctl_ok(&["audit", "--zone", "rid.test.", "--json"]);
    let signed = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["action"] == "sign-zone")
        .unwrap_or_else(|| panic!("no sign-zone entry: {audit}"));
    assert_eq!(signed["request_id"], "sign-run-0815", "{signed}");
    assert!(
        a.log_text()
            .lines()
            .any(|l| l.contains("request_id=sign-run-0815") && l.contains("zone signed")),
        "{}",
        a.log_text()
    );

    // Without one, or with one that is not plain, one is made up.
    for sent in [None, Some("bad id with spaces")] {
        let mut request = tonic::Request::new(keymaster::proto::GetZoneRequest {
            zone: "rid.test.".into(),
        });
        if let Some(s) = sent {
            request
                .metadata_mut()
                .insert("x-request-id", s.parse().unwrap());
        }
        let response = a.zones_client().await.get_zone(request).await.unwrap();
        let id = response
            .metadata()
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|c| c.is_ascii_hexdigit()), "{id}");
    }
}
