//! Taking a signed zone back to insecure (Invoke-DnsServerZoneUnsign)
//! without a validation gap: the delete CDS/CDNSKEY go out and the parent
//! is handed no DS; the engine then waits for the DS to be gone at every
//! parent server and out of caches (`engine::next_in_unsign`) before the
//! zone is published unsigned. Windows unsigns at once, which leaves
//! validators with a DS and no signatures until the parent acts.

use super::runner::{servers_of_parent, Lifecycle};
use crate::error::{Result, ZonesError};
use crate::keyset::KeySet;
use crate::mastership::gate::Managed;
use crate::node::ZoneName;
use crate::store::schema::{Unsign, UnsignStep};

/// What `zone unsign` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsignAsk {
    /// Start going insecure; remove the keys at the end or keep them.
    Start { remove_keys: bool },
    /// The operator says the parent serves no DS (when no check can see it).
    DsGone,
    /// Stay signed after all (only before the zone is unsigned).
    Cancel,
}

impl Lifecycle {
    /// Starts, steps or cancels going insecure. Long because each of the
    /// three asks has its own checks against the zone's state, with the
    /// refusal naming it.
    pub async fn unsign(&self, who: &str, zone: &ZoneName, ask: UnsignAsk) -> Result<()> {
        let m = self.gate().managed(zone).await?;
        let mut z = m.zone.clone();
        let now = self.node().clock.now();
        let step = z.lifecycle.unsign.as_ref().map(|u| u.step);
        let (action, detail) = match (ask, step) {
            (UnsignAsk::Start { remove_keys }, None) => {
                if let Some(r) = &z.lifecycle.roll {
                    return Err(ZonesError::RollUnderWay {
                        zone: m.key.clone(),
                        step: format!("{:?}", r.step),
                    }
                    .into());
                }
                let ttl = self.parent_ds_ttl(&m).await?;
                z.lifecycle.unsign = Some(Unsign {
                    step: UnsignStep::DeletePublished,
                    since: now,
                    ttl,
                    remove_keys,
                });
                (
                    "unsign",
                    format!(
                        "unsigning: CDS/CDNSKEY delete published, no DS handed to the parent; \
                         signing stops once every parent server serves no DS and {ttl} s (its \
                         DS TTL) and the parent's propagation have passed; keys then {}",
                        if remove_keys { "removed" } else { "kept" }
                    ),
                )
            }
            (UnsignAsk::Start { .. }, Some(step)) => {
                return Err(ZonesError::Unsigning {
                    zone: m.key.clone(),
                    step: format!("{step:?}"),
                }
                .into())
            }
            (UnsignAsk::DsGone, Some(UnsignStep::DeletePublished)) => {
                if let Some(u) = z.lifecycle.unsign.as_mut() {
                    u.step = UnsignStep::DsGone;
                    u.since = now;
                }
                z.lifecycle.waiting_on.clear();
                (
                    "unsign-step",
                    "unsigning: the parent serves no DS: said by the operator, not checked".into(),
                )
            }
            (UnsignAsk::Cancel, Some(UnsignStep::DeletePublished | UnsignStep::DsGone)) => {
                z.lifecycle.unsign = None;
                z.lifecycle.waiting_on.clear();
                (
                    "unsign-cancel",
                    "unsigning cancelled: the zone stays signed and hands the parent its DS again"
                        .into(),
                )
            }
            (UnsignAsk::DsGone | UnsignAsk::Cancel, step) => {
                return Err(ZonesError::NotUnsigning {
                    zone: m.key.clone(),
                    step: step.map_or("none".to_string(), |s| format!("{s:?}")),
                }
                .into())
            }
        };
        self.write(&m, &z, who, action, detail).await?;
        self.keysets().changed(zone).await;
        // The submission command is handed the DS RRset the parent should
        // have: none while going insecure, the zone's again on a cancel.
        if matches!(ask, UnsignAsk::Start { .. } | UnsignAsk::Cancel) {
            self.submit_ds(&m, &z).await?;
        }
        self.wake(&m.key);
        Ok(())
    }

    /// The DS TTL the parent serves the zone's DS with now (what caches
    /// count down from once it is gone), at least the policy's.
    async fn parent_ds_ttl(&self, m: &Managed) -> Result<u32> {
        let z = &m.zone;
        let keys = self.node().store.list_keys(&m.key).await?;
        let apex = ZoneName::of(z)?.apex().clone();
        let set = KeySet::new(z.clone(), apex.clone(), keys)?;
        let ds = set.ds(&z.policy.ds_digests())?;
        let seen = self
            .dns_probe()
            .ds_served(&servers_of_parent(z), &apex, &ds)
            .await;
        Ok(seen.max_ttl.max(z.policy.parent_ds_ttl))
    }
}
