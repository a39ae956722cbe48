//! The master-file reader and the whole zone-signing pipeline (sort, checks,
//! NSEC/NSEC3 chains, formatting) on arbitrary input. A stand-in signer
//! returns fixed bytes: what is fuzzed is our parsing and planning.
#![no_main]

use keymaster::dnssec::denial::{Denial, Nsec3Params};
use keymaster::dnssec::sign::{SignError, SignWorker, SigningKey, Validity};
use keymaster::dnssec::zone::{plan_zone, read_zone, sign_in_order, ZoneSignConfig, ZoneStats};
use keymaster::dnssec::{Algorithm, KeyRole};
use libfuzzer_sys::fuzz_target;

struct FixedWorker;

impl SignWorker for FixedWorker {
    fn sign(&mut self, _key: &SigningKey, _data: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(vec![7u8; 64])
    }
}

fn config(denial: Denial) -> ZoneSignConfig {
    let key = |role, key_tag| SigningKey {
        role,
        algorithm: Algorithm::EcdsaP256Sha256,
        key_tag,
        token_id: vec![1],
    };
    let v = Validity {
        inception: 1,
        expiration: 2,
    };
    ZoneSignConfig {
        apex: "example.com.".parse().unwrap(),
        keys: vec![key(KeyRole::Ksk, 1), key(KeyRole::Zsk, 2)],
        dnskeys: vec![vec![1, 1, 3, 13, 0]],
        cds: vec![],
        cdnskeys: vec![],
        dnskey_ttl: 3600,
        denial,
        dnskey_validity: v,
        validity: v,
    }
}

fuzz_target!(|data: &[u8]| {
    // read_zone catches panics of domain's scanner and refuses the entry;
    // libfuzzer-sys's hook would abort on them all the same. Panics that
    // are not caught still abort the run (libfuzzer-sys catches the unwind).
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let denial = if data.first().is_some_and(|b| b & 1 == 1) {
        Denial::Nsec3(Nsec3Params {
            iterations: 1,
            salt: vec![0xab],
            opt_out: data.first().is_some_and(|b| b & 2 == 2),
        })
    } else {
        Denial::Nsec
    };
    let cfg = config(denial);
    let mut stats = ZoneStats::default();
    if let Ok(recs) = read_zone(data, &cfg.apex, 10_000, &mut stats) {
        let mut out = Vec::new();
        if let Ok(plan) = plan_zone(recs, &cfg, &mut stats) {
            let _ = sign_in_order(&plan, &mut FixedWorker, &mut stats, &mut |chunk| {
                out.extend_from_slice(&chunk);
                Ok(())
            });
        }
    }
});
