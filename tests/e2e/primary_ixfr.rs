//! A hidden primary that keeps a journal answers IXFR: after the first
//! AXFR, keymaster asks only for the differences since the version it has
//! (RFC 1995), applies them to its copy of the unsigned zone, and signs
//! and publishes the result: an added, a changed and a removed record.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::dns::Knot;
use crate::common::*;

#[test]
fn changes_at_the_primary_come_by_ixfr_and_are_published() {
    let w = PatchWorld::start_with("ixfr.test.", "nsec", true, 50, &|l| {
        l.push("www A 192.0.2.100".into());
        l.push("gone A 192.0.2.200".into());
    });
    w.published(10);
    assert_eq!(w.a_records("gone.ixfr.test."), ["192.0.2.200"]);
    assert_eq!(w.a_records("www.ixfr.test."), ["192.0.2.100"]);
    // Serial 11: www changed, a record added, one removed.
    w.source(11, &|l| {
        l.push("www A 192.0.2.101".into());
        l.push("new A 192.0.2.111".into());
    });
    w.published(11);
    assert_eq!(w.a_records("www.ixfr.test."), ["192.0.2.101"]);
    assert_eq!(w.a_records("new.ixfr.test."), ["192.0.2.111"]);
    assert!(w.a_records("gone.ixfr.test.").is_empty(), "removed");
    assert_eq!(w.a_records("host49.ixfr.test."), ["198.51.100.49"]);
    // The primary answered an IXFR from 10, not a whole transfer.
    let log = w.primary.as_ref().unwrap().log();
    assert!(
        log.contains("IXFR, outgoing") && log.contains("10 -> 11"),
        "{log}"
    );
}

/// Replaces the line `from` of a source with `to`.
fn replace(lines: &mut [String], from: &str, to: &str) {
    let i = lines.iter().position(|l| l == from).unwrap();
    lines[i] = to.to_string();
}

/// A zone of many names (10,000 unless said) kept signed by keymaster
/// with the signed file written. Its source is a Knot primary with a journal (each version
/// published there and taken by NOTIFY and IXFR), or a file.
struct PatchWorld {
    zone: &'static str,
    dns: String,
    d: Daemon,
    primary: Option<Knot>,
    hosts: usize,
    file: std::path::PathBuf,
    out: std::path::PathBuf,
    _dir: TempDir,
    _token: TestToken,
}

impl PatchWorld {
    fn start(zone: &'static str, denial: &str, from_primary: bool) -> PatchWorld {
        Self::start_with(zone, denial, from_primary, 10_000, &|_| {})
    }

    /// With `hosts` names, serial 10 changed by `first`.
    fn start_with(
        zone: &'static str,
        denial: &str,
        from_primary: bool,
        hosts: usize,
        first: &dyn Fn(&mut Vec<String>),
    ) -> PatchWorld {
        let token = TestToken::new("primary-patch");
        let dns = format!("127.0.0.1:{}", free_port());
        let d = Daemon::start(&token, "node-pt", &["--dns-listen", &dns]);
        let primary = from_primary.then(|| Knot::start_primary_ixfr(&[zone], &dns));
        let dir = TempDir::new("primary-patch-src");
        let w = PatchWorld {
            zone,
            file: dir.path().join("unsigned"),
            out: dir.path().join("signed"),
            dns,
            d,
            primary,
            hosts,
            _dir: dir,
            _token: token,
        };
        w.source(10, first);
        w.d.ctl_ok(&["zone", "add", zone, "--denial", denial]);
        let (kind, from) = match &w.primary {
            Some(p) => ("--primary", p.addr()),
            None => ("--file", w.file.display().to_string()),
        };
        w.d.ctl_ok(&[
            "zone",
            "source",
            zone,
            kind,
            &from,
            "--out",
            w.out.to_str().unwrap(),
            // dig asks as a secondary (nothing answers its NOTIFY).
            "--secondary",
            &format!("127.0.0.1:{}", free_port()),
        ]);
        w
    }

    /// Writes the source at `serial`, changed by `edit`, and publishes it
    /// at the primary if there is one.
    fn source(&self, serial: u32, edit: &dyn Fn(&mut Vec<String>)) {
        let mut lines = vec![
            format!("$ORIGIN {}", self.zone),
            "$TTL 60".to_string(),
            format!("@ SOA ns h {serial} 3600 600 86400 60"),
            "@ NS ns".to_string(),
            "ns A 127.0.0.1".to_string(),
            "sub NS ns.sub".to_string(),
            "ns.sub A 192.0.2.53".to_string(),
            "* TXT \"wildcard\"".to_string(),
        ];
        for i in 0..self.hosts {
            lines.push(format!("host{i} A 198.51.100.{}", i % 250));
        }
        edit(&mut lines);
        let tmp = self.file.with_extension("tmp");
        std::fs::write(&tmp, lines.join("\n") + "\n").unwrap();
        std::fs::rename(&tmp, &self.file).unwrap();
        if let Some(p) = &self.primary {
            p.publish(self.zone, &self.file, serial);
        }
    }

    /// Waits for `serial` in the store and the signed file; its audit
    /// entry's detail.
    fn published(&self, serial: u32) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let details = self.d.audit_details(self.zone, "sign-zone");
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            let in_file = text.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(3) == Some(&"SOA") && f.get(6) == Some(&serial.to_string().as_str())
            });
            if let (Some(last), true) = (details.last(), in_file) {
                if last.starts_with(&format!("published serial {serial} ")) {
                    return last.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "serial {serial} not published: {details:?}\n{}",
                self.d.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for `serial` (`published`), then has the signed file judged
    /// by outside tools and checked to hold every record of the source.
    fn validated(&self, serial: u32) -> String {
        let detail = self.published(serial);
        assert_validates(&self.out, self.zone);
        assert_keeps_every_record(&self.file, &self.out, self.zone);
        detail
    }

    /// The chunks made again and in all, from an audit detail of a patch.
    fn patched(detail: &str) -> (u64, u64) {
        let counts: Vec<u64> = detail
            .split("patched from the last version: ")
            .nth(1)
            .unwrap_or_else(|| panic!("not patched: {detail}"))
            .split(' ')
            .filter_map(|w| w.parse().ok())
            .take(2)
            .collect();
        match counts[..] {
            [made, all] => (made, all),
            _ => panic!("{detail}"),
        }
    }

    /// The owners of the records of this type and data in the signed file.
    fn owners_of(&self, rtype: &str, rdata: &str) -> Vec<String> {
        std::fs::read_to_string(&self.out)
            .unwrap()
            .lines()
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(3) == Some(&rtype) && f[4..].join(" ") == rdata
            })
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect()
    }

    /// The addresses of an owner's A records in the signed file.
    fn a_records(&self, owner: &str) -> Vec<String> {
        std::fs::read_to_string(&self.out)
            .unwrap()
            .lines()
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.first() == Some(&owner) && f.get(3) == Some(&"A")
            })
            .map(|l| l.split_whitespace().last().unwrap().to_string())
            .collect()
    }

    /// The records an IXFR from `serial` carries.
    fn ixfr_from(&self, serial: u32) -> Vec<String> {
        let out = Command::new("dig")
            .args(["-p", self.dns.rsplit(':').next().unwrap(), "@127.0.0.1"])
            .args([
                self.zone,
                &format!("IXFR={serial}"),
                "+noall",
                "+answer",
                "+tcp",
            ])
            .output()
            .expect("dig");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
            .map(str::to_string)
            .collect()
    }
}

/// A zone of many chunks whose change comes by IXFR: the signer patches
/// the chunks that hold the change, the chunk before each and the apex's,
/// and shares the rest with the last version. What it serves must be the
/// whole zone, correctly signed with a complete NSEC chain, as tools
/// nobody here wrote judge it; and its IXFR carries only the change. A
/// change that moves a zone cut is signed whole, and validates too.
#[test]
fn a_change_by_ixfr_patches_only_its_chunks_and_the_zone_still_validates() {
    let w = PatchWorld::start("patch.test.", "nsec", true);
    let first = w.validated(10);
    assert!(first.contains("made whole"), "{first}");

    // Serial 11: a changed address, a new name in the middle, the last
    // name gone, a name after every other (its NSEC names the apex), a
    // changed glue address and the wildcard's text.
    w.source(11, &|l| {
        replace(l, "host1500 A 198.51.100.0", "host1500 A 203.0.113.15");
        l.push("host1500x A 203.0.113.16".into());
        l.retain(|x| x != "host999 A 198.51.100.249");
        l.push("zzz A 203.0.113.99".into());
        replace(l, "ns.sub A 192.0.2.53", "ns.sub A 192.0.2.54");
        replace(l, "* TXT \"wildcard\"", "* TXT \"changed\"");
    });
    let second = w.validated(11);
    eprintln!("serial 11: {second}");
    let (made, chunks) = PatchWorld::patched(&second);
    // Five places changed: each is in one chunk, and the chunk before it
    // may hold the NSEC that names it; and the apex's chunk.
    assert!(chunks >= 30, "a zone of {chunks} chunks only: {second}");
    assert!(made <= 11, "{second}");
    assert_eq!(w.owners_of("A", "203.0.113.15"), ["host1500.patch.test."]);
    assert!(
        !w.owners_of("A", "198.51.100.0")
            .contains(&"host1500.patch.test.".to_string()),
        "the old address is still there"
    );
    assert!(!w
        .owners_of("A", "198.51.100.249")
        .contains(&"host999.patch.test.".to_string()));
    assert_eq!(w.owners_of("A", "203.0.113.16"), ["host1500x.patch.test."]);
    assert_eq!(w.owners_of("TXT", "\"changed\""), ["*.patch.test."]);

    // What a secondary at serial 10 is sent: the change alone.
    let ixfr = w.ixfr_from(10);
    assert!(
        ixfr.iter().any(|l| l.contains("203.0.113.16")) && ixfr.len() < 60,
        "{} records: {ixfr:#?}",
        ixfr.len()
    );

    // Serial 12: a new delegation turns names into glue: signed whole.
    w.source(12, &|l| {
        l.push("host7 NS ns.host7".into());
        l.push("ns.host7 A 192.0.2.77".into());
    });
    let third = w.validated(12);
    assert!(third.contains("made whole"), "{third}");
}

/// In an NSEC3 zone a change that leaves every name's types as they were
/// (an address, a text) keeps the chain: it is patched, and the zone
/// validates. A new name changes the chain: signed whole.
#[test]
fn an_nsec3_zone_is_patched_while_its_chain_stays() {
    let w = PatchWorld::start("patch3.test.", "nsec3", true);
    let first = w.validated(10);
    assert!(first.contains("made whole"), "{first}");
    w.source(11, &|l| {
        replace(l, "host1500 A 198.51.100.0", "host1500 A 203.0.113.15");
        replace(l, "* TXT \"wildcard\"", "* TXT \"changed\"");
    });
    let second = w.validated(11);
    eprintln!("serial 11: {second}");
    let (made, chunks) = PatchWorld::patched(&second);
    assert!(chunks >= 30 && made <= 3, "{second}");
    assert_eq!(w.owners_of("A", "203.0.113.15"), ["host1500.patch3.test."]);
    w.source(12, &|l| l.push("host1500x A 203.0.113.16".into()));
    let third = w.validated(12);
    assert!(third.contains("made whole"), "{third}");
}

/// A file source changed in lines that each stand alone is patched the
/// same way: the lines that went and came are the change. A file whose
/// changed record spans lines is signed whole. Both validate.
#[test]
fn a_file_changed_in_lines_that_stand_alone_is_patched_too() {
    let w = PatchWorld::start("patchf.test.", "nsec", false);
    let first = w.validated(10);
    assert!(first.contains("made whole"), "{first}");
    w.source(11, &|l| {
        replace(l, "host1500 A 198.51.100.0", "host1500 A 203.0.113.15");
        l.push("host1500x A 203.0.113.16".into());
        l.retain(|x| x != "host999 A 198.51.100.249");
    });
    let second = w.validated(11);
    eprintln!("serial 11: {second}");
    let (made, chunks) = PatchWorld::patched(&second);
    // Three names changed, each in a chunk with the one before it; and
    // the apex's chunk.
    assert!(chunks >= 30 && made <= 7, "{second}");
    assert_eq!(w.owners_of("A", "203.0.113.16"), ["host1500x.patchf.test."]);
    assert!(!w
        .owners_of("A", "198.51.100.249")
        .contains(&"host999.patchf.test.".to_string()));
    w.source(12, &|l| l.push("multi TXT ( \"one\"\n  \"two\" )".into()));
    let third = w.validated(12);
    assert!(third.contains("made whole"), "{third}");
}
