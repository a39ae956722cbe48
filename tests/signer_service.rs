//! The Signer gRPC service, driven with the generated client: RRSIGs it
//! returns, put together with the DNSKEY RRset it publishes, make a zone
//! that ldns-verify-zone and dnssec-verify accept.

mod common;

use std::str::FromStr;

use common::*;
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
    d.ctl_ok(&["zone", "add", apex, "--denial", "nsec"]);

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
            vec![nsec("ns1.svc.example.", &[2, 6, 46, 47, 48])],
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

    let mut zone =
        String::from("www.svc.example. 600 IN A 192.0.2.1\nwww.svc.example. 600 IN A 192.0.2.2\n");
    zone.push_str(&format!(
        "{apex} 300 IN SOA ns1.{apex} hostmaster.{apex} 1 7200 3600 1209600 300\n"
    ));
    zone.push_str(&format!(
        "{apex} 3600 IN NS ns1.{apex}\nns1.{apex} 3600 IN A 192.0.2.53\n"
    ));
    zone.push_str(&format!(
        "{apex} 300 IN NSEC ns1.{apex} NS SOA RRSIG NSEC DNSKEY\n"
    ));
    zone.push_str(&format!("ns1.{apex} 300 IN NSEC www.{apex} A RRSIG NSEC\n"));
    zone.push_str(&format!("www.{apex} 300 IN NSEC {apex} A RRSIG NSEC\n"));
    for r in resp
        .signatures
        .iter()
        .flat_map(|s| &s.rrsigs)
        .chain(&keys.dnskeys)
        .chain(&keys.rrsigs)
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
