//! The Signer gRPC service, driven with the generated client: RRSIGs it
//! returns, put together with the DNSKEY RRset it publishes, make a zone
//! that ldns-verify-zone and dnssec-verify accept.

use std::str::FromStr;

use crate::common::*;
use domain::base::name::Name;
use keymaster::proto;

fn wire(name: &str) -> Vec<u8> {
    Name::<Vec<u8>>::from_str(name).unwrap().as_slice().to_vec()
}

fn rrset(owner: &str, rtype: u32, ttl: u32, rdatas: Vec<Vec<u8>>) -> proto::Rrset {
    proto::Rrset {
        owner: wire(owner),
        rtype,
        records: rdatas
            .into_iter()
            .map(|rdata| proto::RecordData {
                rclass: 1,
                ttl,
                rdata,
            })
            .collect(),
    }
}

/// NSEC record data: next name and a bitmap of window 0.
fn nsec(next: &str, types: &[u16]) -> Vec<u8> {
    let mut v = wire(next);
    let mut bits = [0u8; 32];
    let mut len = 0;
    for &t in types {
        bits[(t / 8) as usize] |= 0x80 >> (t % 8);
        len = len.max(t / 8 + 1);
    }
    v.push(0);
    v.push(len as u8);
    v.extend_from_slice(&bits[..len as usize]);
    v
}

fn soa(apex: &str) -> Vec<u8> {
    let mut v = wire(&format!("ns1.{apex}"));
    v.extend(wire(&format!("hostmaster.{apex}")));
    for n in [1u32, 7200, 3600, 1209600, 300] {
        v.extend_from_slice(&n.to_be_bytes());
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rrsigs_from_the_signer_service_validate_with_ldns_and_bind() {
    let token = TestToken::new("signer");
    let d = Daemon::start(&token, "a", &[]);
    let apex = "svc.example.";
    d.ctl_ok(&["zone", "add", apex, "--denial", "nsec", "--cds"]);

    // A small complete zone: apex SOA, NS; www A; NSEC chain apex → ns1 → www → apex.
    let rrsets = vec![
        rrset(apex, 6, 300, vec![soa(apex)]),
        rrset(apex, 2, 3600, vec![wire("ns1.svc.example.")]),
        rrset("NS1.svc.example.", 1, 3600, vec![vec![192, 0, 2, 53]]),
        // Unsorted, with a duplicate: the service sorts and de-duplicates.
        rrset(
            "www.svc.example.",
            1,
            600,
            vec![vec![192, 0, 2, 2], vec![192, 0, 2, 1], vec![192, 0, 2, 2]],
        ),
        rrset(
            apex,
            47,
            300,
            vec![nsec("ns1.svc.example.", &[2, 6, 46, 47, 48, 59, 60])],
        ),
        rrset(
            "ns1.svc.example.",
            47,
            300,
            vec![nsec("www.svc.example.", &[1, 46, 47])],
        ),
        rrset("www.svc.example.", 47, 300, vec![nsec(apex, &[1, 46, 47])]),
    ];
    let mut signer = d.signer_client().await;
    let resp = signer
        .sign_rrsets(proto::SignRrsetsRequest {
            zone: apex.into(),
            rrsets: rrsets.clone(),
            inception: 0,
            expiration: 0,
            include_text: true,
        })
        .await
        .expect("sign")
        .into_inner();
    assert_eq!(resp.signatures.len(), rrsets.len());
    for (i, s) in resp.signatures.iter().enumerate() {
        assert_eq!(s.index as usize, i);
        assert_eq!(s.rrsigs.len(), 1, "one ZSK signs each RRset");
        assert_eq!(s.rrsigs[0].rtype, 46);
    }
    let keys = signer
        .get_dnskeys(proto::GetDnskeysRequest { zone: apex.into() })
        .await
        .expect("dnskeys")
        .into_inner();
    assert_eq!(keys.dnskeys.len(), 2);
    assert_eq!(keys.rrsigs.len(), 1, "the KSK signs the DNSKEY RRset");
    let cds = signer
        .get_cds(proto::GetCdsRequest { zone: apex.into() })
        .await
        .expect("cds")
        .into_inner();
    assert_eq!((cds.cds.len(), cds.cdnskeys.len()), (1, 1));
    assert_eq!(cds.rrsigs.len(), 2, "the KSK signs CDS and CDNSKEY");

    let mut zone =
        String::from("www.svc.example. 600 IN A 192.0.2.1\nwww.svc.example. 600 IN A 192.0.2.2\n");
    zone.push_str(&format!(
        "{apex} 300 IN SOA ns1.{apex} hostmaster.{apex} 1 7200 3600 1209600 300\n"
    ));
    zone.push_str(&format!(
        "{apex} 3600 IN NS ns1.{apex}\nns1.{apex} 3600 IN A 192.0.2.53\n"
    ));
    zone.push_str(&format!(
        "{apex} 300 IN NSEC ns1.{apex} NS SOA RRSIG NSEC DNSKEY CDS CDNSKEY\n"
    ));
    zone.push_str(&format!("ns1.{apex} 300 IN NSEC www.{apex} A RRSIG NSEC\n"));
    zone.push_str(&format!("www.{apex} 300 IN NSEC {apex} A RRSIG NSEC\n"));
    for r in resp
        .signatures
        .iter()
        .flat_map(|s| &s.rrsigs)
        .chain(&keys.dnskeys)
        .chain(&keys.rrsigs)
        .chain(&cds.cds)
        .chain(&cds.cdnskeys)
        .chain(&cds.rrsigs)
    {
        zone.push_str(&r.text);
        zone.push('\n');
    }
    let work = TempDir::new("signer-work");
    let f = work.path().join("svc.signed");
    std::fs::write(&f, &zone).unwrap();
    assert_validates(&f, apex);

    // A signature over changed data must not validate: the check can fail.
    let tampered = zone.replace("192.0.2.53", "192.0.2.99");
    let g = work.path().join("tampered.signed");
    std::fs::write(&g, tampered).unwrap();
    let (ok, _) = run_validator(std::process::Command::new("ldns-verify-zone").arg(&g));
    assert!(!ok, "ldns-verify-zone accepted a tampered zone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_matches_what_bind_computes_from_the_published_dnskey() {
    let token = TestToken::new("ds");
    let d = Daemon::start(&token, "a", &[]);
    d.ctl_ok(&["zone", "add", "ds.example", "--ds-digest", "sha256,sha384"]);
    let out = d.ctl_ok(&["ds", "ds.example"]);
    let ds: Vec<&str> = out.lines().filter(|l| l.contains("\tDS\t")).collect();
    assert_eq!(ds.len(), 2, "one DS per digest for the one KSK: {out}");
    let dnskeys: String = out
        .lines()
        .filter(|l| l.contains("\tDNSKEY\t257"))
        .map(|l| format!("{l}\n"))
        .collect();
    let work = TempDir::new("ds-work");
    let f = work.path().join("keys");
    std::fs::write(&f, dnskeys).unwrap();
    for (flag, digest) in [("-2", " 2 "), ("-a", " 4 ")] {
        let mut cmd = std::process::Command::new("dnssec-dsfromkey");
        if flag == "-a" {
            cmd.args(["-a", "SHA-384"]);
        } else {
            cmd.arg("-2");
        }
        let bind = cmd.args(["-f"]).arg(&f).arg("ds.example").output().unwrap();
        assert!(
            bind.status.success(),
            "{}",
            String::from_utf8_lossy(&bind.stderr)
        );
        let bind = String::from_utf8_lossy(&bind.stdout).to_string();
        let bind_digest = bind.split_whitespace().last().unwrap().to_ascii_lowercase();
        let ours = ds.iter().find(|l| l.contains(digest)).unwrap();
        assert!(
            ours.to_ascii_lowercase().ends_with(&bind_digest),
            "ours: {ours}\nbind: {bind}"
        );
    }
}

fn sign_request(zone: &str, rrsets: Vec<proto::Rrset>) -> proto::SignRrsetsRequest {
    proto::SignRrsetsRequest {
        zone: zone.into(),
        rrsets,
        inception: 0,
        expiration: 0,
        include_text: false,
    }
}

/// The key tag an RRSIG's record data names (RFC 4034 §3.1).
fn rrsig_key_tag(rdata: &[u8]) -> u16 {
    u16::from_be_bytes([rdata[16], rdata[17]])
}

fn keys_json(d: &Daemon, zone: &str) -> Vec<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(&d.ctl_ok(&["key", "list", zone, "--json"]))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ksk_signs_only_the_apex_rrsets_keymaster_builds() {
    let token = TestToken::new("ksk-reach");
    let d = Daemon::start(&token, "a", &[]);
    let apex = "ksk.example.";
    d.ctl_ok(&["zone", "add", apex, "--cds"]);
    let keys = keys_json(&d, apex);
    let tag = |role: &str| {
        keys.iter().find(|k| k["role"] == role).unwrap()["key_tag"]
            .as_u64()
            .unwrap() as u16
    };
    let (ksk, zsk) = (tag("ksk"), tag("zsk"));
    let mut signer = d.signer_client().await;
    let audit_before = d.ctl_ok(&["audit", "--json"]).lines().count();

    // A signer sends an apex DNSKEY RRset holding a key of its own, or a
    // CDS/CDNSKEY pointing at one: refused, naming where the real ones are.
    let own_key = {
        let mut k = vec![1, 1, 3, 13];
        k.extend_from_slice(&[7u8; 64]);
        k
    };
    let own_ds = {
        let mut ds = vec![0x30, 0x39, 13, 2];
        ds.extend_from_slice(&[9u8; 32]);
        ds
    };
    for (rtype, rdata, fetch) in [
        (48, own_key.clone(), "GetDnskeys"),
        (59, own_ds, "GetCds"),
        (60, own_key, "GetCds"),
    ] {
        let e = signer
            .sign_rrsets(sign_request(
                apex,
                vec![rrset(apex, rtype, 3600, vec![rdata])],
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
        assert!(
            e.message().contains("built and signed by keymaster") && e.message().contains(fetch),
            "{}",
            e.message()
        );
    }
    // Below the apex such types are ordinary data, signed by the ZSK.
    let below = signer
        .sign_rrsets(sign_request(
            apex,
            vec![rrset(
                &format!("sub.{apex}"),
                59,
                3600,
                vec![vec![0, 1, 13, 2, 1]],
            )],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rrsig_key_tag(&below.signatures[0].rrsigs[0].rdata), zsk);

    // What the KSK signs is keymaster's: its DNSKEY set, its CDS and
    // CDNSKEY for the KSK; each such signature is in the audit log.
    let dnskeys = signer
        .get_dnskeys(proto::GetDnskeysRequest { zone: apex.into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rrsig_key_tag(&dnskeys.rrsigs[0].rdata), ksk);
    let cds = signer
        .get_cds(proto::GetCdsRequest { zone: apex.into() })
        .await
        .unwrap()
        .into_inner();
    assert!(
        cds.cds[0].text.contains(&format!("CDS\t{ksk} 13 2 ")),
        "{:?}",
        cds.cds
    );
    assert!(cds.rrsigs.iter().all(|r| rrsig_key_tag(&r.rdata) == ksk));
    let log = d.ctl_ok(&["audit", "--json"]);
    let ksk_uses: Vec<&str> = log
        .lines()
        .skip(audit_before)
        .filter(|l| l.contains("\"action\":\"ksk-sign\""))
        .collect();
    assert_eq!(ksk_uses.len(), 3, "DNSKEY, CDS and CDNSKEY: {log}");
    for t in ["DNSKEY", "CDS", "CDNSKEY"] {
        assert!(
            ksk_uses
                .iter()
                .any(|l| l.contains(&format!("KSK {ksk} signed the {t} RRset"))),
            "{t}: {ksk_uses:?}"
        );
    }
    // Asked again, the same signatures come back: the KSK is not used again.
    let again = signer
        .get_dnskeys(proto::GetDnskeysRequest { zone: apex.into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.rrsigs[0].rdata, dnskeys.rrsigs[0].rdata);
    let log = d.ctl_ok(&["audit", "--json"]);
    assert_eq!(log.matches("\"action\":\"ksk-sign\"").count(), 3);
    // A new key changes the DNSKEY RRset: the KSK signs it anew.
    d.ctl_ok(&["key", "add", apex, "--role", "zsk"]);
    let renewed = signer
        .get_dnskeys(proto::GetDnskeysRequest { zone: apex.into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(renewed.dnskeys.len(), 3);
    assert_ne!(renewed.rrsigs[0].rdata, dnskeys.rrsigs[0].rdata);
    // Whole-zone signing says in its audit entry what the KSK signed.
    d.sign_validated(apex, &sample_zone(apex, 5));
    let log = d.ctl_ok(&["audit", "--json"]);
    assert!(
        log.lines().any(|l| l.contains("\"action\":\"sign-zone\"")
            && l.contains(&format!(
                "KSK {ksk} signed the DNSKEY, CDS and CDNSKEY RRsets"
            ))),
        "{log}"
    );
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_validity_is_capped_by_the_zone_policy() {
    let token = TestToken::new("validity");
    let d = Daemon::start(&token, "a", &[]);
    let apex = "valid.example.";
    d.ctl_ok(&["zone", "add", apex, "--signature-validity", "2d"]);
    let mut signer = d.signer_client().await;
    let a = || {
        vec![rrset(
            &format!("www.{apex}"),
            1,
            300,
            vec![vec![192, 0, 2, 1]],
        )]
    };
    let ask = |inception: u64, expiration: u64| proto::SignRrsetsRequest {
        inception: inception as u32,
        expiration: expiration as u32,
        ..sign_request(apex, a())
    };
    // 20 years ahead: refused, with the limit named.
    let e = signer
        .sign_rrsets(ask(0, now() + 20 * 365 * 86400))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message()
            .contains("at most 172800 s (signature_validity)"),
        "{}",
        e.message()
    );
    // In the past: refused.
    let e = signer.sign_rrsets(ask(0, now() - 60)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("not in the future"), "{}", e.message());
    // A window from long ago: refused.
    let e = signer
        .sign_rrsets(ask(now() - 30 * 86400, now() + 3600))
        .await
        .unwrap_err();
    assert!(
        e.message().contains("the zone allows at most"),
        "{}",
        e.message()
    );
    // Within the policy: signed with exactly those times.
    let (inc, exp) = (now() - 60, now() + 86400);
    let ok = signer
        .sign_rrsets(ask(inc, exp))
        .await
        .unwrap()
        .into_inner();
    let rd = &ok.signatures[0].rrsigs[0].rdata;
    let field = |at: usize| u64::from(u32::from_be_bytes(rd[at..at + 4].try_into().unwrap()));
    assert_eq!((field(12), field(8)), (inc, exp), "inception, expiration");
    // The default: now minus the inception offset to now plus the validity.
    let def = signer
        .sign_rrsets(sign_request(apex, a()))
        .await
        .unwrap()
        .into_inner();
    let rd = &def.signatures[0].rrsigs[0].rdata;
    let field = |at: usize| u64::from(u32::from_be_bytes(rd[at..at + 4].try_into().unwrap()));
    let t = now();
    assert!(
        (t + 172800 - 5..=t + 172800).contains(&field(8)),
        "{}",
        field(8)
    );
    assert!(
        (t - 3600 - 5..=t - 3600).contains(&field(12)),
        "{}",
        field(12)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signer_learns_the_zone_parameters_and_nsec3_must_match_them() {
    let token = TestToken::new("params");
    let d = Daemon::start(&token, "a", &[]);
    let apex = "params.example.";
    d.ctl_ok(&[
        "zone",
        "add",
        apex,
        "--nsec3-salt",
        "ab12",
        "--nsec3-iterations",
        "2",
        "--dnskey-ttl",
        "7200",
    ]);
    let keys = keys_json(&d, apex);
    let tag = |role: &str| {
        keys.iter().find(|k| k["role"] == role).unwrap()["key_tag"]
            .as_u64()
            .unwrap() as u32
    };
    let mut signer = d.signer_client().await;
    let p = signer
        .get_signing_parameters(proto::GetSigningParametersRequest { zone: apex.into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.zone, apex);
    assert_eq!(p.denial, "nsec3");
    assert_eq!(
        (
            p.nsec3_hash_algorithm,
            p.nsec3_iterations,
            p.nsec3_salt.as_str(),
            p.nsec3_opt_out
        ),
        (1, 2, "ab12", false)
    );
    assert_eq!(p.zsks.len(), 1);
    assert_eq!((p.zsks[0].key_tag, p.zsks[0].algorithm), (tag("zsk"), 13));
    assert_eq!(p.ksks[0].key_tag, tag("ksk"));
    assert_eq!(
        (
            p.signature_validity,
            p.dnskey_signature_validity,
            p.signature_inception_offset
        ),
        (240 * 3600, 168 * 3600, 3600)
    );
    assert_eq!(p.dnskey_ttl, 7200);
    assert_eq!(p.max_batch_rrsets, 10_000);
    assert!(p.max_message_bytes > 0);

    // NSEC3 records must carry the zone's parameters; an NSEC has no place.
    let nsec3 = |iterations: u16, salt: &[u8]| {
        let mut v = vec![1, 0];
        v.extend_from_slice(&iterations.to_be_bytes());
        v.push(salt.len() as u8);
        v.extend_from_slice(salt);
        v.push(20);
        v.extend_from_slice(&[0x11; 20]);
        v.extend_from_slice(&[0, 1, 0x40]);
        v
    };
    let owner = format!("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.{apex}");
    let good = signer
        .sign_rrsets(sign_request(
            apex,
            vec![rrset(&owner, 50, 300, vec![nsec3(2, &[0xab, 0x12])])],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(good.signatures[0].rrsigs.len(), 1);
    for (what, rtype, rdata) in [
        ("iterations", 50, nsec3(0, &[0xab, 0x12])),
        ("salt", 50, nsec3(2, &[])),
        ("NSEC", 47, nsec(apex, &[1])),
    ] {
        let e = signer
            .sign_rrsets(sign_request(
                apex,
                vec![rrset(&owner, rtype, 300, vec![rdata])],
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{what}");
        assert!(
            e.message().contains("differ from the zone's") || e.message().contains("it uses NSEC3"),
            "{what}: {}",
            e.message()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_its_deadline_stops_signing_and_says_so() {
    let token = TestToken::new("deadline");
    let d = Daemon::start(&token, "a", &[]);
    let apex = "slow.example.";
    // RSA-3072 signs a few hundred RRsets a second on SoftHSM2: a 10,000
    // RRset batch takes tens of seconds.
    d.ctl_ok(&[
        "zone",
        "add",
        apex,
        "--algorithm",
        "rsasha256",
        "--bits",
        "3072",
    ]);
    let batch: Vec<proto::Rrset> = (0..10_000)
        .map(|i| rrset(&format!("h{i}.{apex}"), 1, 300, vec![vec![192, 0, 2, 1]]))
        .collect();
    let mut signer = d.signer_client().await;
    let mut request = tonic::Request::new(sign_request(apex, batch));
    request.set_timeout(std::time::Duration::from_secs(2));
    let began = std::time::Instant::now();
    let e = signer.sign_rrsets(request).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::DeadlineExceeded, "{e:?}");
    assert!(e.message().contains("signing stopped"), "{}", e.message());
    assert!(began.elapsed() < std::time::Duration::from_secs(5));
    // The workers stopped too: a small call right after is answered at
    // once, not after the rest of the batch.
    let began = std::time::Instant::now();
    let small = signer
        .sign_rrsets(sign_request(
            apex,
            vec![rrset(
                &format!("www.{apex}"),
                1,
                300,
                vec![vec![192, 0, 2, 1]],
            )],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(small.signatures.len(), 1);
    assert!(
        began.elapsed() < std::time::Duration::from_secs(5),
        "the next call waited {:?}",
        began.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dns_server_is_told_at_once_when_the_key_set_changes() {
    let token = TestToken::new("watch");
    let d = Daemon::start(&token, "a", &[]);
    let apex = "watch.example.";
    d.ctl_ok(&["zone", "add", apex]);
    let mut signer = d.signer_client().await;
    let mut updates = signer
        .watch_key_set(proto::WatchKeySetRequest { zone: apex.into() })
        .await
        .unwrap()
        .into_inner();
    let first = updates.message().await.unwrap().unwrap();
    assert_eq!(
        (
            first.dnskeys.len(),
            first.zsk_tags.len(),
            first.ksk_tags.len()
        ),
        (2, 1, 1)
    );
    // A new standby ZSK: published, not signing.
    let began = std::time::Instant::now();
    d.ctl_ok(&["key", "add", apex, "--role", "zsk"]);
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), updates.message())
        .await
        .expect("an update")
        .unwrap()
        .unwrap();
    assert!(
        began.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    assert_eq!((next.dnskeys.len(), next.zsk_tags.len()), (3, 1));
    assert!(
        next.dnskeys[0].text.contains("DNSKEY"),
        "{:?}",
        next.dnskeys[0]
    );
    // Retiring the old ZSK after activating the new one changes who signs.
    let keys = keys_json(&d, apex);
    let standby = keys.iter().find(|k| k["state"] == "published").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let old = keys
        .iter()
        .find(|k| k["role"] == "zsk" && k["state"] == "active")
        .unwrap()["key_tag"]
        .as_u64()
        .unwrap();
    d.ctl_ok(&["key", "add", apex, "--role", "zsk", "--activate"]);
    d.ctl_ok(&["key", "retire", apex, &old.to_string(), "--force"]);
    let mut last = next;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while last.zsk_tags.len() != 1 || last.zsk_tags.contains(&(old as u32)) {
        assert!(
            std::time::Instant::now() < deadline,
            "no update without ZSK {old}"
        );
        last = tokio::time::timeout(std::time::Duration::from_secs(10), updates.message())
            .await
            .expect("an update")
            .unwrap()
            .unwrap();
    }
    assert_eq!(
        last.dnskeys.len(),
        4,
        "{standby} and the retired one still published"
    );
}
