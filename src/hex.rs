//! Hex, as key ids and public keys are stored and shown.

/// Lower-case hex of bytes.
pub fn hex(v: &[u8]) -> String {
    v.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses lower- or upper-case hex; None if it is not hex.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        assert_eq!(unhex(&hex(&[0, 1, 0xfe])).unwrap(), vec![0, 1, 0xfe]);
        assert_eq!(unhex("0A").unwrap(), vec![10]);
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }
}
