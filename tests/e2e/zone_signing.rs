//! Whole zones signed through keymasterctl → keymasterd → SoftHSM2 validate
//! with ldns-verify-zone and BIND's dnssec-verify, for every algorithm, with
//! NSEC and with NSEC3.

use crate::common::*;

/// Adds a zone with the given flags, signs the sample zone and checks it
/// with both validators. Returns the signed file's text.
fn sign_and_validate(d: &Daemon, zone: &str, add_flags: &[&str]) -> String {
    let mut args = vec!["zone", "add", zone];
    args.extend_from_slice(add_flags);
    d.ctl_ok(&args);
    let (_dir, output, summary) = d.sign_validated(zone, &sample_zone(zone, 60));
    assert!(summary.contains("RRSIGs"), "{summary}");
    std::fs::read_to_string(&output).unwrap()
}

#[test]
fn ecdsa_p256_zones_validate_with_nsec_and_nsec3() {
    let token = TestToken::new("p256");
    let d = Daemon::start(&token, "a", &[]);
    let nsec = sign_and_validate(&d, "nsec.example.", &["--denial", "nsec"]);
    assert!(nsec.contains("\tNSEC\t"));
    assert!(!nsec.contains("NSEC3"));
    // The default policy: ECDSAP256SHA256 with NSEC3, 0 iterations, no salt.
    let nsec3 = sign_and_validate(&d, "nsec3.example.", &[]);
    assert!(
        nsec3.contains("\tNSEC3PARAM\t1 0 0 -"),
        "default NSEC3PARAM"
    );
    assert!(nsec3.contains("DNSKEY\t257 3 13 "));
    // Glue and data below a zone cut are kept, but neither signed nor
    // chained; the delegation's NS RRset is not signed either.
    for z in [&nsec, &nsec3] {
        let origin = if z == &nsec { "nsec" } else { "nsec3" };
        for (glue, address) in [
            ("ns.insecure", "192.0.2.54"),
            ("deep.ns.insecure", "192.0.2.55"),
            ("ns.secure", "192.0.2.53"),
        ] {
            let owner = format!("{glue}.{origin}.example.");
            let types = types_at(z, &owner);
            assert_eq!(types, vec![format!("A {address}")], "{owner} in:\n{z}");
        }
        for cut in ["insecure", "secure"] {
            let owner = format!("{cut}.{origin}.example.");
            let sigs: Vec<String> = types_at(z, &owner)
                .into_iter()
                .filter(|t| t.starts_with("RRSIG NS "))
                .collect();
            assert!(sigs.is_empty(), "{owner}'s NS RRset is signed: {sigs:?}");
        }
    }
    assert!(types_at(&nsec, "insecure.nsec.example.")
        .iter()
        .any(|t| t == "NSEC mail.nsec.example. NS RRSIG NSEC"));
}

/// Type and data of each record at `owner` in a signed zone file.
fn types_at(zone: &str, owner: &str) -> Vec<String> {
    zone.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 4 && f[0].eq_ignore_ascii_case(owner)).then(|| f[3..].join(" "))
        })
        .collect()
}

#[test]
fn ecdsa_p384_zones_validate_with_nsec_and_nsec3() {
    let token = TestToken::new("p384");
    let d = Daemon::start(&token, "a", &[]);
    sign_and_validate(
        &d,
        "nsec.example.",
        &["--algorithm", "ecdsap384sha384", "--denial", "nsec"],
    );
    let z = sign_and_validate(
        &d,
        "nsec3.example.",
        &["--algorithm", "14", "--denial", "nsec3"],
    );
    assert!(z.contains("DNSKEY\t257 3 14 "));
}

#[test]
fn ed25519_zones_validate_with_nsec_and_nsec3() {
    let token = TestToken::new("ed25519");
    let d = Daemon::start(&token, "a", &[]);
    sign_and_validate(
        &d,
        "nsec.example.",
        &["--algorithm", "ed25519", "--denial", "nsec"],
    );
    let z = sign_and_validate(
        &d,
        "nsec3.example.",
        &[
            "--algorithm",
            "ED25519",
            "--denial",
            "nsec3",
            "--nsec3-salt",
            "a1b2c3d4",
            "--nsec3-iterations",
            "3",
        ],
    );
    assert!(
        z.to_ascii_lowercase()
            .contains("nsec3param\t1 0 3 a1b2c3d4"),
        "salted NSEC3PARAM"
    );
}

#[test]
fn rsasha256_zones_of_every_size_validate() {
    let token = TestToken::new("rsa");
    let d = Daemon::start(&token, "a", &[]);
    sign_and_validate(
        &d,
        "r2048.example.",
        &["--algorithm", "rsasha256", "--denial", "nsec"],
    );
    sign_and_validate(
        &d,
        "r3072.example.",
        &[
            "--algorithm",
            "rsasha256",
            "--bits",
            "3072",
            "--denial",
            "nsec3",
            "--nsec3-opt-out",
        ],
    );
    sign_and_validate(
        &d,
        "r4096.example.",
        &["--algorithm", "8:4096", "--denial", "nsec3"],
    );
    let keys = d.ctl_ok(&["key", "list", "r4096.example.", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&keys).unwrap();
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["bits"] == 4096 && k["algorithm"] == 8));
}

#[test]
fn cds_and_cdnskey_are_published_when_asked_and_signed_by_the_ksk() {
    let token = TestToken::new("cds");
    let d = Daemon::start(&token, "a", &[]);
    let z = sign_and_validate(
        &d,
        "cds.example.",
        &["--cds", "--ds-digest", "sha256,sha384"],
    );
    let keys: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["key", "list", "cds.example.", "--json"])).unwrap();
    let ksk_tag = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == "ksk")
        .unwrap()["key_tag"]
        .as_u64()
        .unwrap();
    assert!(z.contains(&format!("\tCDS\t{ksk_tag} 13 2 ")));
    assert!(z.contains(&format!("\tCDS\t{ksk_tag} 13 4 ")));
    assert!(z.contains("\tCDNSKEY\t257 3 13 "));
    assert!(z.contains("RRSIG\tCDS 13 2 3600 "));
    let cds_sig = z.lines().find(|l| l.contains("RRSIG\tCDS ")).unwrap();
    assert!(
        cds_sig.contains(&format!(" {ksk_tag} cds.example. ")),
        "{cds_sig}"
    );
}

#[test]
fn zone_sign_streams_through_standard_input_and_output() {
    let token = TestToken::new("stdio");
    let d = Daemon::start(&token, "a", &[]);
    d.ctl_ok(&["zone", "add", "io.example"]);
    let work = TempDir::new("stdio-work");
    let out = std::process::Command::new(keymasterctl_bin())
        .args([
            "--server",
            &d.url(),
            "zone",
            "sign",
            "io.example",
            "--in",
            "-",
            "--out",
            "-",
        ])
        .arg("--ca")
        .arg(&d.pki.ca_pem)
        .arg("--cert")
        .arg(&d.admin.cert)
        .arg("--key")
        .arg(&d.admin.key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(sample_zone("io.example", 10).as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let signed = work.path().join("io.signed");
    std::fs::write(&signed, &out.stdout).unwrap();
    assert_validates(&signed, "io.example.");
    assert!(String::from_utf8_lossy(&out.stderr).contains("RRSIGs"));
}

/// A parent whose child keymaster also manages publishes the child's DS
/// from the child's key set, whatever its source says; `zone sign` says
/// so when the source's DS differed, and says nothing when it agreed.
#[test]
fn a_managed_childs_ds_replaces_the_sources_and_zone_sign_says_so() {
    let token = TestToken::new("child-ds-note");
    let d = Daemon::start(&token, "node-n", &[]);
    d.ctl_ok(&["zone", "add", "p.test."]);
    d.ctl_ok(&["zone", "add", "c.p.test."]);
    let ds: Vec<String> = d
        .ctl_ok(&["ds", "c.p.test."])
        .lines()
        .filter(|l| l.split_whitespace().nth(3) == Some("DS"))
        .map(|l| l.split_whitespace().skip(4).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(ds.len(), 1, "{ds:?}");
    let parent = |child_ds: &str| {
        format!(
            "$ORIGIN p.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n\
             c NS ns.c\nns.c A 192.0.2.2\nc DS {child_ds}\n"
        )
    };
    let stale = "12345 13 2 8f2f7ad9b5a4ad1e63c4e2e5c0d6b8a6f1e7d8c9b0a1f2e3d4c5b6a798001122";
    let (_w, out, said) = d.sign_text("p.test.", &parent(stale));
    assert!(said.status.success(), "{said:?}");
    let said = String::from_utf8_lossy(&said.stderr);
    assert!(
        said.contains(
            "note: the DS RRset of c.p.test. in the input was replaced by the one its key set gives"
        ),
        "{said}"
    );
    let signed = std::fs::read_to_string(&out).unwrap();
    assert!(!signed.contains("12345 13 2"), "the stale DS is published");
    assert_validates(&out, "p.test.");
    // The source as the key set has it: nothing to say.
    let (_w, _out, said) = d.sign_text("p.test.", &parent(&ds[0]));
    assert!(said.status.success(), "{said:?}");
    assert!(!String::from_utf8_lossy(&said.stderr).contains("note:"));
}
