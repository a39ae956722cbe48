//! The standard gRPC health service, asked with its stock client over the
//! node's mTLS: SERVING while the token and the store answer; NOT_SERVING
//! while the store (a real etcd, killed) or the token (its files gone) does
//! not, and SERVING again once it is back, without a restart; the token then
//! signs again. Server reflection lists the services for generic tools.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

async fn status(d: &Daemon, service: &str) -> ServingStatus {
    let channel = d.channel_as(&d.admin).await.expect("a channel");
    let r = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await
        .expect("the health service answers");
    r.into_inner().status()
}

async fn wait_for(d: &Daemon, want: ServingStatus, within: Duration) -> Duration {
    let began = Instant::now();
    loop {
        let now = status(d, "").await;
        if now == want {
            return began.elapsed();
        }
        assert!(
            began.elapsed() < within,
            "health stayed {now:?}, expected {want:?}: {}",
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_store_and_is_served_behind_mtls() {
    let mut etcd = Etcd::start("health");
    let token = TestToken::new("health");
    let pki = Arc::new(Pki::new());
    let d = Daemon::start_node(&token, "node-h", &etcd.store(), &pki, &[]);
    wait_for(&d, ServingStatus::Serving, Duration::from_secs(10)).await;
    for service in [
        "keymaster.v1.Signer",
        "keymaster.v1.Zones",
        "keymaster.v1.Audit",
        "keymaster.v1.KeyMaster",
    ] {
        assert_eq!(
            status(&d, service).await,
            ServingStatus::Serving,
            "{service}"
        );
    }
    // A caller without a certificate of the CA is not even let in.
    let stranger = pki.foreign_client("stranger");
    assert!(
        d.channel_as(&stranger).await.is_err() || {
            let ch = d.channel_as(&stranger).await.unwrap();
            HealthClient::new(ch)
                .check(HealthCheckRequest::default())
                .await
                .is_err()
        }
    );

    etcd.kill();
    let took = wait_for(&d, ServingStatus::NotServing, Duration::from_secs(20)).await;
    eprintln!("NOT_SERVING {took:?} after etcd was killed");
    assert!(d.log_text().contains("health: NOT_SERVING"));
    etcd.run();
    let took = wait_for(&d, ServingStatus::Serving, Duration::from_secs(30)).await;
    eprintln!("SERVING {took:?} after etcd was back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_token() {
    let token = TestToken::new("health-token");
    let d = Daemon::start(&token, "node-t", &[]);
    wait_for(&d, ServingStatus::Serving, Duration::from_secs(10)).await;
    d.ctl_ok(&["zone", "add", "back.test."]);
    d.sign_validated("back.test.", &sample_zone("back.test.", 20));
    // The token's files go away (a token pulled, a disk lost), then come back.
    let tokens = token.dir.path().join("tokens");
    let away = token.dir.path().join("tokens-away");
    std::fs::rename(&tokens, &away).unwrap();
    std::fs::create_dir(&tokens).unwrap();
    let took = wait_for(&d, ServingStatus::NotServing, Duration::from_secs(20)).await;
    eprintln!("NOT_SERVING {took:?} after the token went");
    std::fs::remove_dir(&tokens).unwrap();
    std::fs::rename(&away, &tokens).unwrap();
    let took = wait_for(&d, ServingStatus::Serving, Duration::from_secs(30)).await;
    eprintln!("SERVING {took:?} after the token was back");
    // And it signs again with the same keys, without a restart.
    d.sign_validated("back.test.", &sample_zone("back.test.", 20));
    assert!(
        d.log_text().contains("health: NOT_SERVING reason=token"),
        "{}",
        d.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_reflection_lists_the_services_for_generic_grpc_tools() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let token = TestToken::new("reflection");
    let d = Daemon::start(&token, "node-r", &[]);
    let channel = d.channel_as(&d.admin).await.expect("a channel");
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let answer = answers.message().await.unwrap().expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    for want in [
        "grpc.health.v1.Health",
        "keymaster.v1.Audit",
        "keymaster.v1.KeyMaster",
        "keymaster.v1.Signer",
        "keymaster.v1.Zones",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    // A tool finds the file that defines a service, to build its calls.
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(
            "keymaster.v1.Zones".into(),
        )),
    };
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().expect("one answer");
    assert!(
        matches!(
            answer.message_response,
            Some(MessageResponse::FileDescriptorResponse(ref f)) if !f.file_descriptor_proto.is_empty()
        ),
        "{answer:?}"
    );
}

/// A token that stops answering (a node stopped inside a token write
/// holds SoftHSM2's lock: here the test holds it): requests that need the
/// token fail within the bound with Unavailable naming the token and the
/// bound, requests that do not still succeed, the stream slots of callers
/// that gave up are freed, health is NOT_SERVING while it lasts, and a
/// node starting on the token says within a second what it waits for.
/// Once the lock is let go, everything works again without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_stops_answering_fails_requests_within_the_bound() {
    let token = TestToken::new("stalled");
    let dir = TempDir::new("stalled-store");
    let store = format!("sqlite:{}", dir.path().join("keymaster.db").display());
    let pki = Arc::new(Pki::new());
    let bound = ["--token-timeout", "1s"];
    let a = Daemon::start_node(&token, "stall-a", &store, &pki, &bound);
    let b = Daemon::start_node(&token, "stall-b", &store, &pki, &bound);
    a.ctl_ok(&["zone", "add", "stall.test."]);
    let zone = sample_zone("stall.test.", 20);
    a.sign_validated("stall.test.", &zone);
    wait_for(&a, ServingStatus::Serving, Duration::from_secs(10)).await;

    let mut lock = token.hold_write_lock();
    // A key change needs the token: refused within its bound, by name.
    let began = Instant::now();
    let out = ctl_within(&a, &["key", "add", "stall.test.", "--role", "zsk"], 20);
    let took = began.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    // A key generation may take 12 bounds (an RSA key's prime search).
    assert!(
        err.contains("Unavailable") && err.contains("token t-stalled did not answer within 12 s"),
        "{err}"
    );
    assert!(took < Duration::from_secs(15), "answered after {took:?}");
    // Signing on the other node (which has not signed this zone yet, so it
    // must look the keys up in the token): an answer within the bound,
    // whichever it is.
    let input = dir.path().join("zone");
    std::fs::write(&input, &zone).unwrap();
    let sign = [
        "zone",
        "sign",
        "stall.test.",
        "--in",
        input.to_str().unwrap(),
        "--out",
        "/dev/null",
    ];
    let began = Instant::now();
    let out = ctl_within(&b, &sign, 10);
    let took = began.elapsed();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || said.contains("did not answer within 1 s"),
        "{said}"
    );
    assert!(
        took < Duration::from_secs(5),
        "answered after {took:?}: {said}"
    );
    // Callers that give up before the answer (killed after 0.3 s): more of
    // them than a caller has stream slots (4).
    for _ in 0..6 {
        let mut child = b
            .ctl_command(&sign)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let _ = child.kill();
        let _ = child.wait();
    }
    let took = wait_for(&a, ServingStatus::NotServing, Duration::from_secs(10)).await;
    eprintln!("NOT_SERVING {took:?} after the lock was taken");
    // A node starting on the locked token says what it waits for.
    let log = dir.path().join("stall-c.log");
    let mut c = std::process::Command::new(keymasterd())
        .env("SOFTHSM2_CONF", &token.conf)
        .args(["--node-id", "stall-c", "--listen", "127.0.0.1:0"])
        .args(["--token-label", &token.label, "--store", &store])
        .arg("--pin-file")
        .arg(&token.pin_file)
        .arg("--insecure-plaintext")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let began = Instant::now();
    let waits = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("waiting for the token") {
            break began.elapsed();
        }
        assert!(began.elapsed() < Duration::from_secs(1), "{text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("the starting node said what it waits for after {waits:?}");
    signal_pid(c.id(), "KILL");
    let _ = c.wait();

    lock.release();
    let took = wait_for(&a, ServingStatus::Serving, Duration::from_secs(20)).await;
    eprintln!("SERVING {took:?} after the lock was let go");
    // The slots of the callers who gave up are free: a zone signing is
    // not refused for want of one, and signs.
    b.sign_validated("stall.test.", &zone);
    a.ctl_ok(&["key", "add", "stall.test.", "--role", "zsk"]);
    assert!(a
        .log_text()
        .contains("a token call did not return in time; the request fails"));
}

/// keymasterctl on `d`, killed if it has not answered within `secs` (the
/// test fails then rather than hang with the token).
fn ctl_within(d: &Daemon, args: &[&str], secs: u64) -> std::process::Output {
    let child = d
        .ctl_command(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(secs));
        signal_pid(pid, "KILL");
    });
    let out = child.wait_with_output().unwrap();
    drop(watchdog);
    assert!(
        out.status.code().is_some(),
        "keymasterctl {args:?} did not answer within {secs} s"
    );
    out
}
