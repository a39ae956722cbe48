//! Serial number arithmetic (RFC 1982): how SOA serials and RRSIG
//! inception and expiration times compare (RFC 4034 §3.1.5), so that they
//! keep their order across the wrap at 2^32.

/// Whether `a` comes after `b` (RFC 1982 §3.2).
pub fn after(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

/// Whether `a` is `b` or comes after it.
pub fn at_least(a: u32, b: u32) -> bool {
    a == b || after(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_arithmetic_wraps() {
        assert!(after(2, 1));
        assert!(!after(1, 2));
        assert!(!after(7, 7));
        assert!(after(0, u32::MAX));
        assert!(!after(u32::MAX, 0));
        assert!(after(5, u32::MAX - 5));
        assert!(at_least(7, 7) && at_least(8, 7) && !at_least(6, 7));
        assert!(at_least(2, u32::MAX - 1), "after the wrap");
        assert!(!at_least(u32::MAX - 1, 2));
    }
}
