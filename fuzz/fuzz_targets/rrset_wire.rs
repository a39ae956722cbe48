//! The wire-format RRset decoder behind SignRrsets: owner name, type and
//! record data as a DNS server sends them, and their presentation form.
#![no_main]

use domain::base::iana::Rtype;
use keymaster::dnssec::record::write_rdata;
use keymaster::dnssec::rrset::{canonicalize, WireRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Layout: type (2), owner length (1), owner, then records of
    // class (2), ttl (4), length (2), rdata.
    if data.len() < 3 {
        return;
    }
    let rtype = u16::from_be_bytes([data[0], data[1]]);
    let owner_len = data[2] as usize;
    let rest = &data[3..];
    if rest.len() < owner_len {
        return;
    }
    let (owner, mut rest) = rest.split_at(owner_len);
    let mut records = Vec::new();
    while rest.len() >= 8 {
        let class = u16::from_be_bytes([rest[0], rest[1]]);
        let ttl = u32::from_be_bytes([rest[2], rest[3], rest[4], rest[5]]);
        let len = (u16::from_be_bytes([rest[6], rest[7]]) as usize).min(rest.len() - 8);
        records.push(WireRecord {
            class,
            ttl,
            rdata: rest[8..8 + len].to_vec(),
        });
        rest = &rest[8 + len..];
    }
    let apex = "example.com.".parse().unwrap();
    if let Ok(c) = canonicalize(&apex, owner, rtype, &records) {
        let mut text = String::new();
        for r in &c.rdatas {
            write_rdata(&mut text, Rtype::from_int(rtype), r);
        }
    }
    for r in &records {
        let mut text = String::new();
        write_rdata(&mut text, Rtype::from_int(rtype), &r.rdata);
    }
});
