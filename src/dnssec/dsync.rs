//! DSYNC records (RFC 9859 §3): where a parent takes notifications of its
//! children's CDS/CDNSKEY changes. Read by a child's Key Master
//! (`lifecycle::dsync`), written for a parent that announces its endpoint
//! (a zone's `dsync` setting).

use domain::base::iana::Rtype;
use domain::base::name::Name;

/// DSYNC's scheme for NOTIFY (RFC 9859 §3).
pub const SCHEME_NOTIFY: u8 = 1;

/// DSYNC's scheme for DNS UPDATE (draft-johani-dnsop-delegation-mgmt-via-
/// ddns: "send a DNS UPDATE" to the target, RRtype ANY or CDS; not in RFC
/// 9859's registry).
pub const SCHEME_UPDATE: u8 = 2;

/// A notification endpoint a DSYNC record names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub rrtype: Rtype,
    pub scheme: u8,
    pub port: u16,
    pub target: Name<Vec<u8>>,
}

/// Reads DSYNC record data (RFC 9859 §3.1: RRtype, Scheme, Port, Target
/// as an uncompressed name); None if it does not read.
pub fn parse(rdata: &[u8]) -> Option<Endpoint> {
    if rdata.len() < 6 {
        return None;
    }
    let rrtype = Rtype::from_int(u16::from_be_bytes([rdata[0], rdata[1]]));
    let port = u16::from_be_bytes([rdata[3], rdata[4]]);
    let target = Name::from_octets(rdata[5..].to_vec()).ok()?;
    Some(Endpoint {
        rrtype,
        scheme: rdata[2],
        port,
        target,
    })
}

/// DSYNC record data for an endpoint.
pub fn rdata(e: &Endpoint) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + e.target.as_slice().len());
    out.extend(e.rrtype.to_int().to_be_bytes());
    out.push(e.scheme);
    out.extend(e.port.to_be_bytes());
    out.extend(e.target.as_slice());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsync_data_reads_and_bad_data_does_not() {
        // CDS, NOTIFY, port 5359, notify.example.
        let mut rdata = vec![0, 59, 1, 0x14, 0xef];
        rdata.extend([6, b'n', b'o', b't', b'i', b'f', b'y', 7]);
        rdata.extend(b"example");
        rdata.push(0);
        let e = parse(&rdata).unwrap();
        assert_eq!(e.rrtype, Rtype::CDS);
        assert_eq!((e.scheme, e.port), (1, 5359));
        assert_eq!(e.target.to_string(), "notify.example");
        assert_eq!(super::rdata(&e), rdata);
        assert_eq!(parse(&rdata[..4]), None);
        assert_eq!(
            parse(&rdata[..rdata.len() - 1]),
            None,
            "a name without its root label"
        );
    }
}
