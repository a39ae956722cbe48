//! `keymasterctl bench`: signs the same RRsets through keymasterd's gRPC
//! Signer service and directly through PKCS#11 in this process, with the
//! same number of workers and the same key, and prints both rates.

use crate::clock::Clock;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use domain::base::iana::Rtype;
use domain::base::name::Name;

use crate::dnssec::rrset::{self, WireRecord};
use crate::dnssec::sign::{self, SigningKey, Validity};
use crate::dnssec::{Algorithm, KeyRole};
use crate::hsm::Hsm;
use crate::hsm::{Token, TokenConfig, TokenSelector};
use crate::proto::signer_client::SignerClient;
use crate::proto::zones_client::ZonesClient;
use crate::proto::{self};
use crate::secret::Secret;
use crate::signing::KeyWorker;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Zone whose active ZSK signs (add it first).
    pub zone: String,
    /// RRsets to sign on each path.
    #[arg(long, default_value_t = 50_000)]
    pub rrsets: usize,
    /// RRsets per gRPC request.
    #[arg(long, default_value_t = 200)]
    pub batch: usize,
    /// Concurrent workers on each path (default: the cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// PKCS#11 module for the direct path.
    #[arg(long, env = "KEYMASTER_PKCS11_MODULE", default_value = crate::config::DEFAULT_MODULE)]
    pub pkcs11_module: String,
    /// Token label for the direct path.
    #[arg(long, env = "KEYMASTER_TOKEN_LABEL")]
    pub token_label: Option<String>,
    /// Token serial for the direct path.
    #[arg(long, env = "KEYMASTER_TOKEN_SERIAL")]
    pub token_serial: Option<String>,
    /// Sign with the token objects themselves on the direct path (as
    /// keymasterd does with --no-session-key-copies).
    #[arg(long)]
    pub no_session_key_copies: bool,
    /// PIN file for the direct path (or KEYMASTER_PIN).
    #[arg(long, env = "KEYMASTER_PIN_FILE")]
    pub pin_file: Option<PathBuf>,
}

/// The test data: A RRsets below the apex, two records each.
fn rrsets(apex: &str, n: usize) -> Vec<proto::Rrset> {
    (0..n)
        .map(|i| {
            let owner: Name<Vec<u8>> = format!("h{i}.{apex}").parse().expect("valid name");
            proto::Rrset {
                owner: owner.as_slice().to_vec(),
                rtype: 1,
                records: vec![
                    proto::RecordData {
                        rclass: 1,
                        ttl: 3600,
                        rdata: vec![192, 0, 2, (i % 250) as u8],
                    },
                    proto::RecordData {
                        rclass: 1,
                        ttl: 3600,
                        rdata: vec![198, 51, 100, (i % 250) as u8],
                    },
                ],
            }
        })
        .collect()
}

pub async fn run(client: &crate::grpc::client::ClientArgs, args: BenchArgs) -> Result<(), String> {
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let channel = crate::grpc::client::connect(client).await?;
    let (apex, key) = active_zsk(&channel, &args.zone).await?;
    let data = rrsets(&apex, args.rrsets);
    println!(
        "zone {apex}, ZSK {} ({}), {} RRsets, {workers} workers, {} RRsets per request",
        key.key_tag, key.algorithm, args.rrsets, args.batch
    );
    let token = Arc::new(open_token(&args)?);
    let clock = crate::clock::SystemClock;
    let now = clock.now() as u32;
    let validity = Validity {
        inception: now - 3600,
        expiration: now + 864000,
    };
    let apex_name: Name<Vec<u8>> = apex.parse().map_err(|_| "bad zone name".to_string())?;
    let direct = direct_rate(
        token,
        Arc::new(data.clone()),
        key,
        apex_name,
        validity,
        workers,
    )?;
    println!("direct PKCS#11: {direct:.0} RRSIGs/s");
    let requests = requests(&apex, &data, validity, workers, args.batch);
    let grpc = grpc_rate(&channel, requests).await?;
    println!("gRPC SignRrsets: {grpc:.0} RRSIGs/s");
    println!("ratio gRPC/direct: {:.1}%", 100.0 * grpc / direct);
    Ok(())
}

/// The zone's apex and its active ZSK, as keymasterd lists them.
async fn active_zsk(
    channel: &tonic::transport::Channel,
    zone: &str,
) -> Result<(String, SigningKey), String> {
    let mut zones = ZonesClient::new(channel.clone());
    let settings = zones
        .get_zone(proto::GetZoneRequest { zone: zone.into() })
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    let keys = zones
        .list_keys(proto::ListKeysRequest { zone: zone.into() })
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner()
        .keys;
    let zsk = keys
        .iter()
        .find(|k| k.role == "zsk" && k.state == "active")
        .ok_or("the zone has no active ZSK")?;
    let policy = settings.policy.unwrap_or_default();
    let algorithm =
        Algorithm::from_number(zsk.algorithm, policy.rsa_bits).map_err(|e| e.to_string())?;
    let key = SigningKey {
        role: KeyRole::Zsk,
        algorithm,
        key_tag: zsk.key_tag as u16,
        token_id: crate::hex::unhex(&zsk.id).ok_or("bad key id")?,
    };
    Ok((settings.zone_name, key))
}

/// The token, opened in this process for the direct path.
fn open_token(args: &BenchArgs) -> Result<Token, String> {
    let pin = match (&args.pin_file, std::env::var("KEYMASTER_PIN").ok()) {
        (Some(f), _) => crate::config::read_pin_file(f)?,
        (None, Some(p)) => Secret::new(p),
        (None, None) => return Err("the direct path needs --pin-file or KEYMASTER_PIN".into()),
    };
    let selector = match (&args.token_label, &args.token_serial) {
        (Some(l), _) => TokenSelector::by_label(l),
        (None, Some(s)) => TokenSelector::by_serial(s),
        _ => return Err("the direct path needs --token-label or --token-serial".into()),
    };
    Token::open(&TokenConfig {
        module: args.pkcs11_module.clone(),
        selector,
        pin,
        session_key_copies: !args.no_session_key_copies,
    })
    .map_err(|e| e.to_string())
}

/// RRSIGs per second signing `data` directly, one thread per worker.
fn direct_rate(
    token: Arc<Token>,
    data: Arc<Vec<proto::Rrset>>,
    key: SigningKey,
    apex: Name<Vec<u8>>,
    validity: Validity,
    workers: usize,
) -> Result<f64, String> {
    let clock = crate::clock::SystemClock;
    let started = clock.instant();
    let mut handles = Vec::new();
    for w in 0..workers {
        let (token, data, key, apex) = (token.clone(), data.clone(), key.clone(), apex.clone());
        handles.push(std::thread::spawn(move || -> Result<usize, String> {
            let mut signer = token.signer().map_err(|e| e.to_string())?;
            let mut worker = KeyWorker::new(signer.as_mut(), "bench.");
            let mut n = 0;
            for r in data.iter().skip(w).step_by(workers) {
                let records: Vec<WireRecord> = r
                    .records
                    .iter()
                    .map(|d| WireRecord {
                        class: d.rclass as u16,
                        ttl: d.ttl,
                        rdata: d.rdata.clone(),
                    })
                    .collect();
                let c = rrset::canonicalize(&apex, &r.owner, r.rtype as u16, &records)
                    .map_err(|e| e.to_string())?;
                sign::sign_rrset(
                    &mut worker,
                    &key,
                    &apex,
                    &c.owner_wire,
                    c.labels,
                    Rtype::A,
                    c.ttl,
                    c.rdatas.iter().map(|x| x.as_slice()),
                    validity,
                )
                .map_err(|e| e.to_string())?;
                n += 1;
            }
            Ok(n)
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.join().map_err(|_| "direct worker panicked")??;
    }
    Ok(total as f64 / clock.instant().duration_since(started).as_secs_f64())
}

/// The gRPC requests of each worker, built before the clock starts, as a
/// DNS server builds each once.
fn requests(
    apex: &str,
    data: &[proto::Rrset],
    validity: Validity,
    workers: usize,
    batch: usize,
) -> Vec<Vec<proto::SignRrsetsRequest>> {
    let mut per_worker: Vec<Vec<proto::SignRrsetsRequest>> =
        (0..workers).map(|_| Vec::new()).collect();
    for (i, chunk) in data.chunks(batch.max(1)).enumerate() {
        per_worker[i % workers].push(proto::SignRrsetsRequest {
            zone: apex.to_string(),
            rrsets: chunk.to_vec(),
            inception: validity.inception,
            expiration: validity.expiration,
            include_text: false,
        });
    }
    per_worker
}

/// RRSIGs per second through SignRrsets, each worker keeping one request
/// in flight.
async fn grpc_rate(
    channel: &tonic::transport::Channel,
    per_worker: Vec<Vec<proto::SignRrsetsRequest>>,
) -> Result<f64, String> {
    let clock = crate::clock::SystemClock;
    let started = clock.instant();
    let mut tasks = Vec::new();
    for requests in per_worker {
        let mut client = SignerClient::new(channel.clone())
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        tasks.push(tokio::spawn(async move {
            let mut n = 0usize;
            for request in requests {
                let r = client
                    .sign_rrsets(request)
                    .await
                    .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?;
                n += r
                    .into_inner()
                    .signatures
                    .iter()
                    .map(|s| s.rrsigs.len())
                    .sum::<usize>();
            }
            Ok::<usize, String>(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.map_err(|e| e.to_string())??;
    }
    Ok(total as f64 / clock.instant().duration_since(started).as_secs_f64())
}
