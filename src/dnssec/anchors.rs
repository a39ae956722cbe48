//! Trust anchors for validators, from a zone's DS records and DNSKEY
//! RRset in presentation form: Unbound's `trust-anchor:` lines, BIND's
//! `trust-anchors` statement, DS records (`dsset-ZONE`), and the KSKs'
//! DNSKEY records (`keyset-ZONE`, also a file for Unbound's
//! `trust-anchor-file:`).
//!
//! BIND is given `static-ds`, not `initial-ds`: an `initial-` anchor makes
//! BIND follow the key by RFC 5011, whose 30-day hold-down a double-KSK
//! roll does not wait for, so the validator would lose the zone once the
//! old KSK goes.

/// What a validator's operator asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Unbound,
    Bind,
    Ds,
    Keyset,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "unbound" => Format::Unbound,
            "bind" => Format::Bind,
            "ds" => Format::Ds,
            "keyset" => Format::Keyset,
            _ => return None,
        })
    }
}

/// The fields of a record in presentation form: owner, TTL, class, type,
/// then the record data's fields.
fn fields(record: &str) -> Vec<&str> {
    record.split_whitespace().collect()
}

/// Whether a DNSKEY record is a key-signing key (the SEP flag, 257) that
/// is not revoked (RFC 5011's REVOKE flag, 0x80): a revoked key is no
/// anchor.
fn is_ksk(record: &str) -> bool {
    let f = fields(record);
    f.get(3) == Some(&"DNSKEY")
        && f.get(4)
            .and_then(|v| v.parse::<u16>().ok())
            .is_some_and(|flags| flags & 1 == 1 && flags & 0x80 == 0)
}

/// The anchors in `format`, from the zone's DS records and its DNSKEY
/// RRset (only the KSKs of which are used). Empty when there are none.
pub fn render(format: Format, ds: &[String], dnskeys: &[String]) -> String {
    let ksks: Vec<&String> = dnskeys.iter().filter(|k| is_ksk(k)).collect();
    let mut out = String::new();
    match format {
        Format::Ds => {
            for d in ds {
                out.push_str(&format!("{}\n", fields(d).join(" ")));
            }
        }
        Format::Keyset => {
            for k in &ksks {
                out.push_str(&format!("{}\n", fields(k).join(" ")));
            }
        }
        Format::Unbound => {
            for d in ds {
                let f = fields(d);
                // Owner, class, type and data: Unbound wants no TTL here.
                let record = [&f[..1], &f[2..]].concat().join(" ");
                out.push_str(&format!("trust-anchor: \"{record}\"\n"));
            }
        }
        Format::Bind => {
            out.push_str("trust-anchors {\n");
            for d in ds {
                let f = fields(d);
                if f.len() >= 8 {
                    out.push_str(&format!(
                        "\t{} static-ds {} {} {} \"{}\";\n",
                        f[0],
                        f[4],
                        f[5],
                        f[6],
                        f[7..].concat()
                    ));
                }
            }
            out.push_str("};\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DS: &str = "example.\t3600\tIN\tDS\t12345 13 2 ABCDEF0123";
    const KSK: &str = "example. 3600 IN DNSKEY 257 3 13 AAAAbbbb";
    const ZSK: &str = "example. 3600 IN DNSKEY 256 3 13 CCCCdddd";

    #[test]
    fn each_format_carries_the_ksks_and_their_ds_only() {
        let ds = [DS.to_string()];
        let keys = [KSK.to_string(), ZSK.to_string()];
        assert_eq!(
            render(Format::Unbound, &ds, &keys),
            "trust-anchor: \"example. IN DS 12345 13 2 ABCDEF0123\"\n"
        );
        assert_eq!(
            render(Format::Bind, &ds, &keys),
            "trust-anchors {\n\texample. static-ds 12345 13 2 \"ABCDEF0123\";\n};\n"
        );
        assert_eq!(
            render(Format::Ds, &ds, &keys),
            "example. 3600 IN DS 12345 13 2 ABCDEF0123\n"
        );
        assert_eq!(render(Format::Keyset, &ds, &keys), format!("{KSK}\n"));
        assert_eq!(Format::parse("bind"), Some(Format::Bind));
        assert_eq!(Format::parse("yaml"), None);
    }
}
