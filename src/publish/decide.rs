//! Whether the zone signer makes a new version of a zone, why, and how
//! (patched from the last version or signed whole): decided without I/O,
//! from what it last published and what holds now. `mod.rs` reads the
//! facts (key set, source, clock), asks here, and makes what is decided.
//!
//! ```text
//!  not served here at this epoch ─► TookRole      ─► whole
//!  ZSKs, policy or children's DS  ─► KeysOrPolicy  ─► whole
//!  apex keys, KSKs or outputs     ─► ApexOrOutputs ─► patch (the apex's chunk)
//!  refresh time come              ─► RefreshDue    ─► patch (the chunks due)
//!  source text changed            ─► SourceChanged ─► patch by the change if known, else whole
//! ```

use crate::dnssec::zone::{ChildDs, ExtraRrset};
use crate::policy::Policy;
use crate::signing::zone::SourceChange;
use crate::store::schema::SerialPolicy;

/// Why a version is made, in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// This node does not serve the zone at this epoch yet: it took the
    /// role, or started.
    TookRole { epoch: u64 },
    /// The ZSKs, the policy or the children's DS changed: every RRset's
    /// signatures depend on them.
    KeysOrPolicy,
    /// Only what the apex publishes (DNSKEY, CDS and their KSKs) or the
    /// outputs changed.
    ApexOrOutputs,
    /// Signatures came within the refresh window of their expiry.
    RefreshDue,
    /// The source's text changed.
    SourceChanged,
}

impl Trigger {
    /// The reason as the audit log and `zone status` say it.
    pub fn reason(&self) -> String {
        match self {
            Trigger::TookRole { epoch } => format!("serving as Key Master (epoch {epoch})"),
            Trigger::KeysOrPolicy => "the key set, the policy or the outputs changed".into(),
            Trigger::ApexOrOutputs => "the published keys, the KSKs or the outputs changed".into(),
            Trigger::RefreshDue => "signatures refreshed before they expire".into(),
            Trigger::SourceChanged => "the source changed".into(),
        }
    }
}

/// What every RRset's signatures depend on besides the source.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SigningInputs {
    /// Key tags of the ZSKs that sign.
    pub zsks: Vec<u16>,
    pub policy: Policy,
    /// The DS RRsets of the children keymaster manages.
    pub children: Vec<ChildDs>,
    /// The RRsets keymaster adds beside the source's (DSYNC, RFC 9615
    /// signals): a change signs the zone whole.
    pub extra: Vec<ExtraRrset>,
}

/// What only the apex's chunk and the outputs depend on.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApexInputs {
    pub dnskeys: Vec<Vec<u8>>,
    pub cds: Vec<Vec<u8>>,
    /// Key tags of the KSKs that sign.
    pub ksks: Vec<u16>,
    pub out_file: Option<String>,
    pub secondaries: Vec<String>,
    pub serial_policy: SerialPolicy,
    pub tsig_key: Option<String>,
    pub unsigned: bool,
}

/// What a signed version was made with, compared as values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SignedWith {
    pub signing: SigningInputs,
    pub apex: ApexInputs,
}

/// The facts of one look at a zone.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// Whether this node serves a version of the zone.
    pub served: bool,
    /// The epoch it last published at, and the zone's now.
    pub published_epoch: u64,
    pub epoch: u64,
    pub last: &'a SignedWith,
    pub now_with: &'a SignedWith,
    /// The stored refresh time (0: none), and the time now.
    pub refresh_at: u64,
    pub now: u64,
    /// A reload was asked (`zone reload`, a NOTIFY), or the source's mark
    /// (size and time, a primary's serial) changed.
    pub reload: bool,
    pub stamp_changed: bool,
}

/// What to do after a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// Nothing has changed.
    Nothing,
    /// Read the source; sign for this reason, or (None) only if its text
    /// changed (`after_reading`).
    Read(Option<Trigger>),
}

/// The first half of the decision, before the source is read.
pub fn look(f: &Facts) -> Look {
    let trigger = if !f.served || f.published_epoch != f.epoch {
        Some(Trigger::TookRole { epoch: f.epoch })
    } else if f.last.signing != f.now_with.signing {
        Some(Trigger::KeysOrPolicy)
    } else if f.last.apex != f.now_with.apex {
        Some(Trigger::ApexOrOutputs)
    } else if f.refresh_at != 0 && f.now >= f.refresh_at {
        Some(Trigger::RefreshDue)
    } else if f.reload || f.stamp_changed {
        None
    } else {
        return Look::Nothing;
    };
    Look::Read(trigger)
}

/// The second half, once the source is read: why to sign, if at all. A
/// source whose last version failed is signed again even unchanged (it is
/// read again only when it changes, or on a reload).
pub fn after_reading(
    before: Option<Trigger>,
    digest_changed: bool,
    failed_last: bool,
) -> Option<Trigger> {
    match before {
        Some(t) => Some(t),
        None if digest_changed || failed_last => Some(Trigger::SourceChanged),
        None => None,
    }
}

/// How the version is made: patched from the last one by `change` (the
/// source's known change from the text the last version was signed from;
/// an empty change when only signatures came due, or only the apex or the
/// outputs changed, with the source as it was), or (None) signed whole.
/// A version made after a failure is made whole.
pub fn patch_by(
    trigger: Trigger,
    change: Option<(Vec<u8>, SourceChange)>,
    last_digest: &[u8],
    digest: &[u8],
    failed_last: bool,
) -> Option<SourceChange> {
    match (trigger, change) {
        _ if failed_last => None,
        (Trigger::SourceChanged, Some((from, c))) if from == last_digest => Some(c),
        (Trigger::RefreshDue | Trigger::ApexOrOutputs, _) if digest == last_digest => {
            Some(SourceChange::default())
        }
        _ => None,
    }
}

/// The refresh window of a zone and a band beyond it (seconds): a
/// signature is made again once less than a quarter of the shortest
/// validity is left; a pass then also renews those due within a fortieth
/// more, so that refreshes come in rounds rather than one chunk at a time.
/// Chunks' expiries are spread over a tenth of the validity, so a round
/// signs about a quarter of the zone again. The band is at least 10 s (a
/// quarter of the validity when that is shorter): with short validities a
/// fortieth is a second or less, and chunks due a second apart each made a
/// version of their own, with its NOTIFY and transfer.
pub fn refresh_window(policy: &Policy) -> (u64, u64) {
    let span = u64::from(
        policy
            .signature_validity
            .min(policy.dnskey_signature_validity),
    );
    (span / 4, (span / 40).max((span / 4).min(10)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(last: &'a SignedWith, now_with: &'a SignedWith) -> Facts<'a> {
        Facts {
            served: true,
            published_epoch: 3,
            epoch: 3,
            last,
            now_with,
            refresh_at: 1000,
            now: 900,
            reload: false,
            stamp_changed: false,
        }
    }

    #[test]
    fn the_reasons_come_in_their_order_of_precedence() {
        let last = SignedWith::default();
        let mut now_with = SignedWith::default();
        assert_eq!(look(&facts(&last, &now_with)), Look::Nothing);
        let f = Facts {
            stamp_changed: true,
            ..facts(&last, &now_with)
        };
        assert_eq!(
            look(&f),
            Look::Read(None),
            "read; signed if the text changed"
        );
        let f = Facts {
            now: 1000,
            ..facts(&last, &now_with)
        };
        assert_eq!(look(&f), Look::Read(Some(Trigger::RefreshDue)));
        now_with.apex.ksks = vec![7];
        assert_eq!(
            look(&facts(&last, &now_with)),
            Look::Read(Some(Trigger::ApexOrOutputs))
        );
        now_with.signing.zsks = vec![9];
        assert_eq!(
            look(&facts(&last, &now_with)),
            Look::Read(Some(Trigger::KeysOrPolicy))
        );
        let f = Facts {
            epoch: 4,
            ..facts(&last, &now_with)
        };
        assert_eq!(look(&f), Look::Read(Some(Trigger::TookRole { epoch: 4 })));
        assert_eq!(
            Trigger::TookRole { epoch: 4 }.reason(),
            "serving as Key Master (epoch 4)"
        );
    }

    #[test]
    fn a_known_change_patches_only_the_version_it_was_made_from() {
        let change = || Some((b"d1".to_vec(), SourceChange::default()));
        let t = Trigger::SourceChanged;
        assert!(patch_by(t, change(), b"d1", b"d2", false).is_some());
        assert!(
            patch_by(t, change(), b"d0", b"d2", false).is_none(),
            "another base"
        );
        assert!(
            patch_by(t, change(), b"d1", b"d2", true).is_none(),
            "after a failure"
        );
        assert!(
            patch_by(t, None, b"d1", b"d2", false).is_none(),
            "no known change"
        );
        // A refresh with the source as it was: the last version, patched.
        assert!(patch_by(Trigger::RefreshDue, None, b"d1", b"d1", false).is_some());
        assert!(patch_by(Trigger::RefreshDue, None, b"d1", b"d2", false).is_none());
        assert!(patch_by(Trigger::KeysOrPolicy, change(), b"d1", b"d1", false).is_none());
        // Read because the mark changed, the text did not: nothing to do.
        assert_eq!(after_reading(None, false, false), None);
        assert_eq!(after_reading(None, false, true), Some(t));
    }
}
