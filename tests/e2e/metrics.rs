//! Prometheus metrics as a monitoring system sees them: `/metrics` scraped
//! over plain HTTP from a real keymasterd; Prometheus' own `promtool check
//! metrics` accepts what is served; the counters move with the work done
//! (RRSIGs per zone and key role, calls per method and status code) and the
//! state gauges say what `keymasterctl` says (the Key Master, the roll in
//! flight, the served signatures' expiry). A token that goes away shows
//! as PKCS#11 errors by function and return value, and its return as a
//! module re-initialisation.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const ZONE: &str = "metrics.test.";

fn promtool_accepts(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian prometheus) is installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}\n{text}"
    );
}

/// Scrapes until `series` is there with a value `ok` accepts.
fn wait_for(addr: &str, series: &str, ok: impl Fn(f64) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = scrape_metrics(addr);
        if metric_value(&text, series).is_some_and(&ok) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{series} not as expected: {:?}\n{text}",
            metric_value(&text, series)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_scrape_shows_the_work_done_and_promtool_accepts_it() {
    let token = TestToken::new("metrics");
    let metrics = format!("127.0.0.1:{}", free_port());
    let dns = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(
        &token,
        "node-m",
        &["--metrics-listen", &metrics, "--dns-listen", &dns],
    );
    let before = scrape_metrics(&metrics);
    promtool_accepts(&before);
    let zsk = format!("keymaster_rrsigs_total{{zone=\"{ZONE}\",role=\"zsk\"}}");
    let ksk = format!("keymaster_rrsigs_total{{zone=\"{ZONE}\",role=\"ksk\"}}");
    assert_eq!(metric_value(&before, &zsk), None, "{before}");

    d.ctl_ok(&[
        "zone",
        "add",
        ZONE,
        "--zsk-lifetime",
        "off",
        "--ksk-lifetime",
        "off",
    ]);
    let (_work, signed, _) = d.sign_validated(ZONE, &sample_zone(ZONE, 40));
    let rrsigs = count_type(&signed, "RRSIG") as f64;
    // Asked of a zone nobody manages: counted under its status code.
    d.ctl_err(&["zone", "show", "nosuch.test."]);

    let dir = TempDir::new("metrics-src");
    let src = dir.path().join("zone");
    std::fs::write(&src, sample_zone(ZONE, 10)).unwrap();
    let out = dir.path().join("signed.zone");
    d.ctl_ok(&[
        "zone",
        "source",
        ZONE,
        "--file",
        src.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let expiry = format!("keymaster_served_signature_expiry_seconds{{zone=\"{ZONE}\"}}");
    // Signatures are valid for days: the earliest expires in more than a
    // day and no later than the policy's validity (10 days by default).
    wait_for(&metrics, &expiry, |s| s > 86_400.0 && s <= 10.0 * 86_400.0);

    let zsks: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["key", "list", ZONE, "--json"])).unwrap();
    let zsk_tag = zsks
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == "zsk")
        .map(|k| k["key_tag"].as_u64().unwrap())
        .unwrap();
    d.ctl_ok(&["key", "roll", ZONE, &zsk_tag.to_string()]);
    let roll = format!(
        "keymaster_rollover_in_progress{{zone=\"{ZONE}\",role=\"zsk\",step=\"zsk-published\"}}"
    );
    let after = wait_for(&metrics, &roll, |v| v == 1.0);
    promtool_accepts(&after);

    // The zone signing's own signatures, the signer's and the KSK's.
    let made = metric_value(&after, &zsk).unwrap_or(0.0);
    assert!(
        made >= rrsigs - 2.0,
        "{made} ZSK RRSIGs counted, the signed zone has {rrsigs}\n{after}"
    );
    assert!(metric_value(&after, &ksk).unwrap_or(0.0) >= 1.0, "{after}");
    let rate = format!("keymaster_zone_signing_rrsigs_per_second{{zone=\"{ZONE}\"}}");
    assert!(metric_value(&after, &rate).unwrap_or(0.0) > 0.0, "{after}");
    let calls = |method: &str, code: &str| {
        let service = if method == "ListNodes" {
            "KeyMaster"
        } else {
            "Zones"
        };
        metric_value(
            &after,
            &format!(
                "keymaster_grpc_calls_total{{service=\"keymaster.v1.{service}\",method=\"{method}\",code=\"{code}\"}}"
            ),
        )
        .unwrap_or(0.0)
    };
    assert!(calls("SignZone", "OK") >= 1.0, "{after}");
    assert!(calls("AddZone", "OK") >= 1.0, "{after}");
    assert!(calls("GetZone", "NotFound") >= 1.0, "{after}");
    assert!(
        metric_value(
            &after,
            "keymaster_grpc_call_duration_seconds_count{service=\"keymaster.v1.Zones\",method=\"SignZone\"}"
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{after}"
    );
    assert!(
        metric_value(&after, "keymaster_signing_queue_wait_seconds_count").unwrap_or(0.0) >= 1.0
    );
    // The state, as keymasterctl says it.
    let zone_label = format!("{{zone=\"{ZONE}\"}}");
    assert_eq!(
        metric_value(&after, &format!("keymaster_key_master{zone_label}")),
        Some(1.0),
        "{after}"
    );
    assert!(
        metric_value(&after, &format!("keymaster_role_epoch{zone_label}")).unwrap_or(0.0) >= 1.0
    );
    assert_eq!(
        metric_value(
            &after,
            &format!("keymaster_role_changes_total{{zone=\"{ZONE}\",change=\"gained\"}}")
        ),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        metric_value(&after, "keymaster_node_online{node=\"node-m\"}"),
        Some(1.0),
        "{after}"
    );
    assert_eq!(metric_value(&after, "keymaster_state_read_ok"), Some(1.0));

    // OpenMetrics for a scraper that asks for it; nothing but /metrics.
    let (status, headers, body) = http_get(
        &metrics,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
    );
    assert!(status.contains(" 200 "), "{status}");
    assert!(
        headers.contains("content-type: application/openmetrics-text"),
        "{headers}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    let (status, _, _) = http_get(&metrics, "/", None);
    assert!(status.contains(" 404 "), "{status}");
}

#[test]
fn a_token_that_goes_away_shows_as_pkcs11_errors_and_a_reinitialisation() {
    let token = TestToken::new("metrics-token");
    let metrics = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(&token, "node-mt", &["--metrics-listen", &metrics]);
    d.ctl_ok(&["zone", "add", "gone.test."]);
    let before = scrape_metrics(&metrics);
    let reinits = metric_value(&before, "keymaster_token_reinitialisations_total").unwrap_or(0.0);
    let tokens = token.dir.path().join("tokens");
    let away = token.dir.path().join("tokens-away");
    std::fs::rename(&tokens, &away).unwrap();
    std::fs::create_dir(&tokens).unwrap();
    // The health check looks at the token every 2 s: its failures are
    // PKCS#11 errors, by function and return value.
    let deadline = Instant::now() + Duration::from_secs(30);
    let errors = loop {
        let text = scrape_metrics(&metrics);
        let errors: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with("keymaster_token_errors_total{function=\"C_"))
            .map(str::to_string)
            .collect();
        if !errors.is_empty() {
            break errors;
        }
        assert!(
            Instant::now() < deadline,
            "no token errors counted:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(errors.iter().all(|l| l.contains("rv=\"CKR_")), "{errors:?}");
    std::fs::remove_dir(&tokens).unwrap();
    std::fs::rename(&away, &tokens).unwrap();
    wait_for(&metrics, "keymaster_token_reinitialisations_total", |n| {
        n > reinits
    });
    d.sign_validated("gone.test.", &sample_zone("gone.test.", 10));
}
