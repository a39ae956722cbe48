//! The services one node runs, built together over its token, store and
//! clock. The gRPC layer calls them; nothing here knows gRPC.
//!
//! ```text
//!   lifecycle ─► keyset ──┐
//!   zones ──► keyset::Inventory ──► mastership::Gate ──► node
//!     │            │                                      ▲
//!     └──► mastership (leases, candidates, moves) ────────┤
//!   publish ──► signing, mastership::Gate (keeps zones signed, serves them)
//!   children ──► mastership::Gate (external children's DS, from their CDS)
//!   signing ──► keyset::KeySets ──────────────────────────┘
//!                      (node: id, hsm, store, clock, audit)
//! ```

use std::sync::Arc;

use crate::children::Children;
use crate::keyset::{Inventory, KeySets};
use crate::lifecycle::Lifecycle;
use crate::mastership::{Gate, Mastership, Peers};
use crate::node::{Node, ZoneName};
use crate::publish::Publisher;
use crate::signing::{Limits, Signing};
use crate::zones::Zones;

pub struct Services {
    pub node: Arc<Node>,
    pub zones: Zones,
    pub inventory: Arc<Inventory>,
    pub keysets: Arc<KeySets>,
    pub signing: Arc<Signing>,
    pub mastership: Arc<Mastership>,
    pub lifecycle: Arc<Lifecycle>,
    pub publisher: Arc<Publisher>,
    pub children: Arc<Children>,
}

/// What the services take beyond the node.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub limits: Limits,
    /// Run when a KSK roll hands the parent a new DS.
    pub ds_submit_command: Option<std::path::PathBuf>,
    /// TSIG keys secondaries may sign transfer requests with.
    pub tsig_keys: crate::tsig::TsigKeys,
    /// When a served zone's nearing expiry is a loud error (seconds before).
    pub expiry_warning: Option<u64>,
    /// Where the last-known key sets are kept on disk (`--state-dir`).
    pub key_set_dir: Option<crate::keyset::disk::KeySetDir>,
    /// Reviews versions of zones whose policy asks for it (`--review-command`).
    pub review_command: Option<std::path::PathBuf>,
    /// How insecure children are bootstrapped (RFC 9615); None: not.
    pub bootstrapping: Option<crate::children::bootstrap::Bootstrapping>,
}

impl Services {
    /// Builds the services; `peers` lets this node call others (the
    /// candidate check, the release of a transfer).
    pub fn new(node: Node, settings: Settings, peers: Option<Arc<dyn Peers>>) -> Services {
        let node = Arc::new(node);
        let gate = Arc::new(Gate::new(node.clone()));
        let keysets = Arc::new(KeySets::new(node.clone(), settings.key_set_dir.clone()));
        let inventory = Arc::new(Inventory::new(node.clone(), gate.clone(), keysets.clone()));
        let mastership = Arc::new(Mastership::new(node.clone(), gate.clone(), peers));
        let lifecycle = Arc::new(Lifecycle::new(
            node.clone(),
            gate.clone(),
            inventory.clone(),
            keysets.clone(),
            &mastership,
            settings.ds_submit_command,
            settings.tsig_keys.clone(),
        ));
        let signing = Arc::new(Signing::new(node.clone(), keysets.clone(), settings.limits));
        let publisher = Arc::new(Publisher::new(
            node.clone(),
            gate.clone(),
            signing.clone(),
            keysets.clone(),
            mastership.held_zones(),
            settings.tsig_keys,
            (settings.expiry_warning, settings.review_command),
        ));
        let children = Arc::new(Children::new(
            node.clone(),
            gate.clone(),
            settings.bootstrapping,
            Arc::new(NsFromPublisher(publisher.clone())),
        ));
        publisher
            .served
            .hear_cds_notices(Arc::new(NoticesToChildren(children.clone())));
        Services {
            children,
            lifecycle,
            publisher,
            zones: Zones::new(
                node.clone(),
                gate,
                inventory.clone(),
                keysets.clone(),
                mastership.clone(),
            ),
            signing,
            inventory,
            keysets,
            mastership,
            node,
        }
    }
}

/// The child poller reads a delegation's NS names from the version of
/// the parent the zone signer serves.
struct NsFromPublisher(Arc<Publisher>);

impl crate::children::ServedNs for NsFromPublisher {
    fn ns(&self, parent: &ZoneName, child: &str) -> Option<Vec<String>> {
        self.0
            .delegations(parent)
            .into_iter()
            .find(|d| d.child.eq_ignore_ascii_case(child))
            .map(|d| d.ns.iter().map(|n| n.to_ascii_lowercase()).collect())
    }
}

/// The child poller hears the NOTIFY(CDS) that the zone signer's DNS
/// listener takes (neither module imports the other).
struct NoticesToChildren(Arc<Children>);

impl crate::publish::served::CdsNotices for NoticesToChildren {
    fn notice(&self, child: &str, from: std::net::SocketAddr) -> crate::publish::served::CdsNotice {
        use crate::children::Notice;
        use crate::publish::served::CdsNotice;
        match self.0.notice(child, from) {
            Notice::Polled => CdsNotice::Polled,
            Notice::TooSoon => CdsNotice::TooSoon,
            Notice::Unknown => CdsNotice::Unknown,
        }
    }
}

// The publisher's tests: a zone kept signed over time. They need a zone
// added and held, which takes the services together, so they live beside
// the assembly (publish/ must not import what is built over it).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::hsm::fake::FakeHsm;
    use crate::policy::Policy;
    use crate::publish::SourceSettings;
    use crate::store::schema::Publishing;
    use crate::store::testing::TempStore;

    const ZONE: &str = "kept.example.";

    fn zone_name() -> crate::node::ZoneName {
        crate::node::ZoneName::parse(ZONE).unwrap()
    }
    const T0: u64 = 1_796_125_696;
    const H: u64 = 3600;

    struct World {
        clock: ManualClock,
        services: Services,
        source: std::path::PathBuf,
        _store: TempStore,
    }

    async fn world() -> World {
        world_with(Settings::default()).await
    }

    async fn world_with(settings: Settings) -> World {
        let store = TempStore::new().await;
        let clock = ManualClock::new(T0);
        let node = Node {
            id: "n1".into(),
            hsm: Arc::new(FakeHsm::new("publish")),
            store: store.store.clone(),
            clock: Arc::new(clock.clone()),
            spool: None,
        };
        let services = Services::new(node, settings, None);
        let policy = Policy {
            signature_validity: 40 * H as u32,
            dnskey_signature_validity: 20 * H as u32,
            signature_inception_offset: 0,
            // A refresh round patches an NSEC zone's last version.
            denial: crate::policy::DenialPolicy::Nsec,
            ..Policy::default()
        };
        services
            .zones
            .add_zone("test", &zone_name(), policy)
            .await
            .unwrap();
        services.mastership.notice_role_changes().await.unwrap();
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let source =
            std::env::temp_dir().join(format!("km-publish-{}-{n}.zone", std::process::id()));
        std::fs::write(&source, zone_text(3)).unwrap();
        let asked = SourceSettings {
            source_file: source.display().to_string(),
            ..Default::default()
        };
        services
            .publisher
            .set_source("test", &zone_name(), &asked)
            .await
            .unwrap();
        World {
            clock,
            services,
            source,
            _store: store,
        }
    }

    fn zone_text(serial: u32) -> String {
        format!(
            "$ORIGIN kept.example.\n$TTL 60\n@ SOA ns h {serial} 10 10 60 60\n@ NS ns\nns A 192.0.2.1\n"
        )
    }

    impl World {
        async fn publishing(&self) -> Publishing {
            let z = self.services.node.store.get_zone(ZONE).await.unwrap();
            z.unwrap().publishing
        }

        /// Whether the signer warns of the served zone's nearing expiry now.
        async fn warns(&self) -> bool {
            let z = self.services.node.store.get_zone(ZONE).await.unwrap();
            self.services.publisher.warn_if_expiring(&z.unwrap())
        }

        fn served_serial(&self) -> Option<u32> {
            self.services.publisher.served.get(ZONE).map(|z| z.serial)
        }
    }

    #[tokio::test]
    async fn signatures_are_refreshed_at_three_quarters_and_a_late_zone_is_loud() {
        let w = world().await;
        let publisher = &w.services.publisher;
        publisher.pass().await.unwrap();
        let p = w.publishing().await;
        assert_eq!(p.serial, Some(3));
        assert_eq!(w.served_serial(), Some(3));
        // The DNSKEY RRset's signature (20 h, less its jitter of at most
        // 2 h) expires first; it is made again 5 h (a quarter) before.
        assert!(
            (T0 + 18 * H..=T0 + 20 * H).contains(&p.expires),
            "{}",
            p.expires - T0
        );
        assert_eq!(p.refresh_at, p.expires - 5 * H);
        w.clock.advance(p.refresh_at - T0 - 1);
        publisher.pass().await.unwrap();
        assert_eq!(
            w.publishing().await.serial,
            Some(3),
            "signed again too early"
        );
        w.clock.advance(1);
        publisher.pass().await.unwrap();
        let q = w.publishing().await;
        assert_eq!(q.serial, Some(4), "not signed again at the refresh time");
        assert_eq!(q.reason, "signatures refreshed before they expire");
        assert_eq!(q.expires, p.refresh_at + (p.expires - T0));
        // Only what had to be: the DNSKEY RRset's (near expiry) and the
        // SOA's (a new serial); every other RRSIG is kept.
        let audit = w
            .services
            .node
            .store
            .read_audit(Some(ZONE), 0)
            .await
            .unwrap();
        let last = audit.last().unwrap();
        assert!(
            last.detail.contains("RRSIGs of which 2 made now")
                && last
                    .detail
                    .contains("patched from the last version: 1 of 1 chunks"),
            "{}",
            last.detail
        );
        assert!(!w.warns().await);

        // The source breaks: nothing is published, the last version is
        // served, and as its expiry nears the signer says so, every ten
        // minutes at most.
        std::fs::write(&w.source, "@ SOA broken\n").unwrap();
        let now = w.services.node.clock.now();
        w.clock.advance(q.refresh_at - now);
        publisher.pass().await.unwrap();
        let r = w.publishing().await;
        assert_eq!(r.serial, Some(4));
        assert!(r.error.as_deref().unwrap().contains("line 1"), "{r:?}");
        assert_eq!(w.served_serial(), Some(4));
        let now = w.services.node.clock.now();
        // An eighth of 20 h before the expiry: 2.5 h.
        w.clock.advance(q.expires - now - 9000 - 1);
        assert!(!w.warns().await);
        w.clock.advance(1);
        assert!(w.warns().await);
        w.clock.advance(599);
        assert!(!w.warns().await);
        w.clock.advance(1);
        assert!(w.warns().await);
        let _ = std::fs::remove_file(&w.source);
    }

    /// Signatures of a minute, in several chunks whose expiries are
    /// spread: a refresh due within a short span of another is one version
    /// (with its NOTIFY and transfer), not one per chunk; and no served
    /// signature ever expires.
    #[tokio::test]
    async fn refreshes_due_close_together_are_one_version() {
        let w = world().await;
        let publisher = &w.services.publisher;
        let mut z = w.services.node.store.get_zone(ZONE).await.unwrap().unwrap();
        z.policy.signature_validity = 60;
        z.policy.dnskey_signature_validity = 60;
        let audit = w
            .services
            .node
            .draft("test", ZONE, "set-policy", String::new());
        w.services
            .node
            .store
            .update_zone(&z, z.epoch, &[], &[], &audit)
            .await
            .unwrap();
        let mut text = zone_text(3);
        for i in 0..1500 {
            text.push_str(&format!("h{i} A 192.0.2.{}\n", i % 250));
        }
        std::fs::write(&w.source, text).unwrap();
        publisher.reload(&zone_name());
        publisher.pass().await.unwrap();
        let mut versions = vec![(w.services.node.clock.now(), w.publishing().await.serial)];
        for _ in 0..300 {
            w.clock.advance(1);
            publisher.pass().await.unwrap();
            let p = w.publishing().await;
            let now = w.services.node.clock.now();
            assert!(
                p.expires > now,
                "a served signature expired at {now}: {p:?}"
            );
            if p.serial != versions.last().unwrap().1 {
                versions.push((now, p.serial));
            }
        }
        let gaps: Vec<u64> = versions.windows(2).map(|v| v[1].0 - v[0].0).collect();
        assert!(
            gaps.len() >= 5,
            "refreshed {} times in 5 minutes",
            gaps.len()
        );
        assert!(
            gaps.iter().all(|&g| g >= 10),
            "versions closer than 10 s apart: {gaps:?}"
        );
        let _ = std::fs::remove_file(&w.source);
    }

    #[tokio::test]
    async fn the_expiry_warning_margin_can_be_set() {
        let w = world_with(Settings {
            expiry_warning: Some(6 * H),
            ..Settings::default()
        })
        .await;
        let publisher = &w.services.publisher;
        publisher.pass().await.unwrap();
        let p = w.publishing().await;
        w.clock.advance(p.expires - T0 - 6 * H - 1);
        assert!(!w.warns().await);
        w.clock.advance(1);
        assert!(w.warns().await);
        let _ = std::fs::remove_file(&w.source);
    }
}
