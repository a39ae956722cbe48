//! The change between two versions of a zone file, line by line, when
//! every line means the same wherever it stands: then the lines that went
//! and came are the records deleted and added, and the signer patches the
//! last signed version by them (`dnssec::patch`) instead of reading,
//! sorting and signing the whole file again.
//!
//! A line stands alone when the file's directives are all at its head and
//! the same in both versions (with a `$TTL`, so no record takes its TTL
//! from the one before), no line continues the last one's owner (a line
//! that starts with a blank), no record spans lines (parentheses), and a
//! line that went is not also still there (a record given twice). Any
//! other file is signed whole, which is always right.

use std::collections::HashMap;

use crate::signing::zone::SourceChange;

/// The change from `old` to `new`, or None when the lines do not stand
/// alone. Both sides carry the head (the directives), so that each reads
/// as the file does.
pub fn change(old: &[u8], new: &[u8]) -> Option<SourceChange> {
    let (old_head, old_body) = split_head(old)?;
    let (new_head, new_body) = split_head(new)?;
    if old_head != new_head || !stands_alone(new_body) || !stands_alone(old_body) {
        return None;
    }
    let old_lines: Vec<&[u8]> = lines(old_body).collect();
    let new_lines: Vec<&[u8]> = lines(new_body).collect();
    // Most of a file is as it was: the lines before and after the change
    // are not compared one by one.
    let prefix = old_lines
        .iter()
        .zip(&new_lines)
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = old_lines[prefix..]
        .iter()
        .rev()
        .zip(new_lines[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let mut net: HashMap<&[u8], i64> = HashMap::new();
    for l in &old_lines[prefix..old_lines.len() - suffix] {
        *net.entry(l).or_default() -= 1;
    }
    for l in &new_lines[prefix..new_lines.len() - suffix] {
        *net.entry(l).or_default() += 1;
    }
    let mut change = SourceChange {
        deleted: old_head.to_vec(),
        added: new_head.to_vec(),
    };
    let mut gone = Vec::new();
    for (line, n) in net {
        if is_blank(line) || n == 0 {
            continue;
        }
        let side = if n < 0 {
            gone.push(line);
            &mut change.deleted
        } else {
            &mut change.added
        };
        for _ in 0..n.unsigned_abs() {
            side.extend_from_slice(line);
            side.push(b'\n');
        }
    }
    // A record given twice, one of them gone: it is still in the zone.
    if !gone.is_empty() {
        let gone: std::collections::HashSet<&[u8]> = gone.into_iter().collect();
        if new_lines.iter().any(|l| gone.contains(l)) {
            return None;
        }
    }
    Some(change)
}

/// The head of a file (its directives, blank and comment lines, up to the
/// first record) and the rest; None without a `$TTL` there.
fn split_head(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut at = 0;
    let mut ttl = false;
    for line in text.split_inclusive(|b| *b == b'\n') {
        let t = trim(line);
        if t.starts_with(b"$") {
            ttl |= t.len() >= 4 && t[..4].eq_ignore_ascii_case(b"$TTL");
        } else if !is_blank(t) {
            break;
        }
        at += line.len();
    }
    ttl.then(|| text.split_at(at))
}

/// No directive, no line that continues another's owner, no parentheses.
fn stands_alone(body: &[u8]) -> bool {
    !body.iter().any(|b| matches!(b, b'(' | b')'))
        && lines(body).all(|l| is_blank(l) || !(l[0] == b' ' || l[0] == b'\t' || l[0] == b'$'))
}

fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

fn trim(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(line.len());
    &line[start..]
}

/// Blank, or a comment alone.
fn is_blank(line: &[u8]) -> bool {
    let t = trim(line);
    t.is_empty() || t[0] == b';'
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "$ORIGIN f.example.\n$TTL 60\n";

    fn text(lines: &[&str]) -> Vec<u8> {
        format!("{HEAD}{}\n", lines.join("\n")).into_bytes()
    }

    fn sides(c: &SourceChange) -> (Vec<String>, Vec<String>) {
        let body = |t: &[u8]| -> Vec<String> {
            let mut v: Vec<String> = String::from_utf8_lossy(&t[HEAD.len()..])
                .lines()
                .map(str::to_string)
                .collect();
            v.sort();
            v
        };
        (body(&c.deleted), body(&c.added))
    }

    #[test]
    fn the_lines_that_went_and_came_are_the_change() {
        let old = text(&[
            "@ SOA ns h 1 1 1 1 1",
            "a A 192.0.2.1",
            "b A 192.0.2.2",
            "c A 192.0.2.3",
        ]);
        let new = text(&[
            "@ SOA ns h 2 1 1 1 1",
            "a A 192.0.2.1",
            "b A 192.0.2.9",
            "d A 192.0.2.4",
        ]);
        let c = change(&old, &new).unwrap();
        let (gone, came) = sides(&c);
        assert_eq!(
            gone,
            ["@ SOA ns h 1 1 1 1 1", "b A 192.0.2.2", "c A 192.0.2.3"]
        );
        assert_eq!(
            came,
            ["@ SOA ns h 2 1 1 1 1", "b A 192.0.2.9", "d A 192.0.2.4"]
        );
        // Moved lines are no change.
        let moved = text(&[
            "c A 192.0.2.3",
            "@ SOA ns h 1 1 1 1 1",
            "a A 192.0.2.1",
            "b A 192.0.2.2",
        ]);
        let (gone, came) = sides(&change(&old, &moved).unwrap());
        assert!(gone.is_empty() && came.is_empty());
    }

    #[test]
    fn lines_that_do_not_stand_alone_are_no_change_to_patch_with() {
        let old = text(&["@ SOA ns h 1 1 1 1 1", "a A 192.0.2.1"]);
        let refused = [
            // A line that takes the owner of the one before.
            text(&[
                "@ SOA ns h 1 1 1 1 1",
                "a A 192.0.2.1",
                "  AAAA 2001:db8::1",
            ]),
            // A record over several lines.
            text(&["@ SOA ns h 1 1 1 1 1", "a TXT ( \"x\" )"]),
            // A directive after the head.
            text(&[
                "@ SOA ns h 1 1 1 1 1",
                "$ORIGIN sub.f.example.",
                "a A 192.0.2.1",
            ]),
            // Another head.
            b"$ORIGIN f.example.\n$TTL 30\n@ SOA ns h 1 1 1 1 1\n".to_vec(),
        ];
        // A record given twice, one of them gone: it is still there.
        let twice = text(&["@ SOA ns h 1 1 1 1 1", "a A 192.0.2.1", "a A 192.0.2.1"]);
        for new in &refused {
            assert!(
                change(&old, new).is_none(),
                "{}",
                String::from_utf8_lossy(new)
            );
        }
        assert!(change(&twice, &old).is_none());
        // Without $TTL a record may take the TTL of the one before.
        let no_ttl = b"$ORIGIN f.example.\n@ 60 SOA ns h 1 1 1 1 1\n".to_vec();
        assert!(change(&no_ttl, &no_ttl).is_none());
    }
}
