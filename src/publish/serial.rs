//! The SOA serial a new signed version of a zone is published with. It
//! never goes backwards in RFC 1982 serial arithmetic, also across a change
//! of Key Master: the last serial published is in the store.

use crate::dnssec::serial::after;
use crate::store::schema::SerialPolicy;

/// Why no serial could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerialError {
    #[error(
        "serial policy keep: the source's serial {in_source} is not above the last one \
         published ({last}); raise the serial in the source"
    )]
    NotRaised { in_source: u32, last: u32 },
}

/// The serial to publish next: from the policy, the source's serial, the
/// last serial published (None: never) and the time (Unix seconds).
pub fn next_serial(
    policy: SerialPolicy,
    source: u32,
    last: Option<u32>,
    now: u64,
) -> Result<u32, SerialError> {
    let wanted = match policy {
        SerialPolicy::Keep => {
            return match last {
                Some(last) if !after(source, last) => Err(SerialError::NotRaised {
                    in_source: source,
                    last,
                }),
                _ => Ok(source),
            }
        }
        SerialPolicy::Increment => source,
        SerialPolicy::UnixTime => now as u32,
        SerialPolicy::DateSerial => date_serial(now),
    };
    Ok(match last {
        Some(last) if !after(wanted, last) => last.wrapping_add(1),
        _ => wanted,
    })
}

/// YYYYMMDD00 of the UTC day of `now`.
fn date_serial(now: u64) -> u32 {
    let (y, m, d) = crate::clock::civil_date(now);
    (y * 10_000 + m * 100 + d).saturating_mul(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-12-01T11:48:16Z
    const NOW: u64 = 1_796_125_696;

    #[test]
    fn increment_takes_the_source_or_one_above_the_last() {
        let p = SerialPolicy::Increment;
        assert_eq!(next_serial(p, 10, None, NOW), Ok(10));
        assert_eq!(next_serial(p, 10, Some(9), NOW), Ok(10));
        assert_eq!(next_serial(p, 10, Some(10), NOW), Ok(11));
        assert_eq!(next_serial(p, 3, Some(40), NOW), Ok(41));
        assert_eq!(next_serial(p, 3, Some(u32::MAX), NOW), Ok(3));
        assert_eq!(next_serial(p, 0, Some(u32::MAX), NOW), Ok(0));
    }

    #[test]
    fn keep_refuses_a_serial_that_is_not_raised() {
        let p = SerialPolicy::Keep;
        assert_eq!(next_serial(p, 10, None, NOW), Ok(10));
        assert_eq!(next_serial(p, 11, Some(10), NOW), Ok(11));
        assert_eq!(
            next_serial(p, 10, Some(10), NOW),
            Err(SerialError::NotRaised {
                in_source: 10,
                last: 10
            })
        );
        assert!(next_serial(p, 9, Some(10), NOW).is_err());
    }

    #[test]
    fn unix_time_and_date_serials_never_go_back() {
        assert_eq!(
            next_serial(SerialPolicy::UnixTime, 1, None, NOW),
            Ok(NOW as u32)
        );
        assert_eq!(
            next_serial(SerialPolicy::UnixTime, 1, Some(NOW as u32 + 5), NOW),
            Ok(NOW as u32 + 6)
        );
        let d = SerialPolicy::DateSerial;
        assert_eq!(next_serial(d, 1, None, NOW), Ok(2026120100));
        assert_eq!(next_serial(d, 1, Some(2026120100), NOW), Ok(2026120101));
        assert_eq!(next_serial(d, 1, Some(2026113007), NOW), Ok(2026120100));
        // More than 99 changes in a day borrow from the next day's numbers.
        assert_eq!(next_serial(d, 1, Some(2026120199), NOW), Ok(2026120200));
    }
}
