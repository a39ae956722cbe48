//! The standard gRPC health service, asked with its stock client over the
//! node's mTLS: SERVING while the token and the store answer; NOT_SERVING
//! while the store (a real etcd, killed) or the token (its files gone) does
//! not, and SERVING again once it is back, without a restart; the token then
//! signs again. Server reflection lists the services for generic tools.
// Tests drive real processes in real time: they read the system clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
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
