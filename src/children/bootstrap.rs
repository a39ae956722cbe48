//! RFC 9615 as a parent: under which names an insecure child's DNS
//! operator signals its CDS/CDNSKEY (`_dsboot.CHILD._signal.NS` for each of
//! the child's name servers outside the child's own domain), and what is
//! signalled there, validated from the operator's trust anchors through
//! the resolver the parent's Key Master is given (`validate`). What to make
//! of it is `cds::bootstrap`'s.

use std::net::SocketAddr;

use domain::base::iana::Rtype;
use domain::base::name::Name;

use super::cds::Signal;
use super::validate::{Anchors, Validator};

/// What a parent's Key Master needs to bootstrap children: a recursive
/// resolver that finds the signals, and the trust anchors they validate
/// from (`--bootstrap-resolver`, `--bootstrap-anchors`).
#[derive(Debug, Clone)]
pub struct Bootstrapping {
    pub resolver: SocketAddr,
    pub anchors: Anchors,
}

/// The name servers of `child` (absolute names) that signals can be
/// found under: those outside the child's own domain (a signalling zone
/// below the child would need the child's trust first; RFC 9615 §4.4).
/// None left is an error naming them.
pub fn signalling_ns(child: &str, ns: &[String]) -> Result<Vec<String>, String> {
    let child = child.to_ascii_lowercase();
    let mut out: Vec<String> = ns
        .iter()
        .map(|n| {
            let n = n.to_ascii_lowercase();
            if n.ends_with('.') {
                n
            } else {
                format!("{n}.")
            }
        })
        .filter(|n| *n != child && !n.ends_with(&format!(".{child}")))
        .collect();
    out.sort();
    out.dedup();
    if out.is_empty() {
        return Err(format!(
            "every name server of the child ({}) is in its own domain: no signal can be \
             validated for it (RFC 9615 §4.4)",
            ns.join(", ")
        ));
    }
    Ok(out)
}

/// `_dsboot.CHILD._signal.NS`, or why it is no domain name (too long:
/// RFC 9615 §4.4).
pub fn signal_name(child: &str, ns: &str) -> Result<Name<Vec<u8>>, String> {
    let text = format!("_dsboot.{child}_signal.{ns}");
    text.parse()
        .map_err(|_| format!("{text} is not a domain name (too long?): no signal can be there"))
}

/// What is signalled for `child` under each of `ns` (from
/// `signalling_ns`), each validated; the lookups of one round share the
/// operator's zones' keys.
pub async fn signals(b: &Bootstrapping, child: &str, ns: &[String], now: u64) -> Vec<Signal> {
    let mut validator = Validator::new(b.resolver, &b.anchors, now);
    let mut out = Vec::new();
    for n in ns {
        let signal = match signal_name(child, n) {
            Err(e) => Err(e),
            Ok(name) => {
                let cds = validator.rrset(name.clone(), Rtype::CDS).await;
                let cdnskey = validator.rrset(name, Rtype::CDNSKEY).await;
                cds.and_then(|c| cdnskey.map(|k| (c.rdatas, k.rdatas)))
            }
        };
        out.push((n.clone(), signal));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_looked_for_under_the_name_servers_outside_the_child() {
        let ns = vec![
            "NS1.op.example.".to_string(),
            "ns.child.example.".to_string(),
            "ns2.op.example".to_string(),
            "ns1.op.example.".to_string(),
        ];
        assert_eq!(
            signalling_ns("child.example.", &ns).unwrap(),
            vec!["ns1.op.example.", "ns2.op.example."]
        );
        let e = signalling_ns("child.example.", &ns[1..2]).unwrap_err();
        assert!(e.contains("in its own domain"), "{e}");
        assert_eq!(
            signal_name("child.example.", "ns1.op.example.")
                .unwrap()
                .to_string(),
            "_dsboot.child.example._signal.ns1.op.example"
        );
        let long = format!("{}.example.", "a".repeat(60) + &".b".repeat(90));
        let e = signal_name(&long, "ns1.op.example.").unwrap_err();
        assert!(e.contains("is not a domain name"), "{e}");
    }
}
