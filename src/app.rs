//! Composition root: configuration → token, store, services → gRPC server;
//! and graceful shutdown on SIGTERM or SIGINT.

use std::sync::Arc;

use crate::auth::AccessControl;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::grpc::forward::Forwarder;
use crate::grpc::limits::CallerLimits;
use crate::grpc::{serve, ServeOptions};
use crate::hsm::Token;
use crate::mastership::Peers;
use crate::node::Node;
use crate::services::{Services, Settings};

/// Runs keymasterd until a shutdown signal. Errors are one line each.
///
/// Long because it is the daemon's start-up in order (token, store,
/// node, services, listeners, signals) and its shut-down in reverse.
pub async fn run(config: Config) -> Result<(), String> {
    let forwarder = Arc::new(Forwarder::new(&config.node_id, config.tls.as_ref())?);
    let services = Arc::new(open_services(&config, forwarder.clone()).await?);
    let access = Arc::new(AccessControl::load(config.access_file.as_deref())?);
    let tls = match &config.tls {
        Some((cert, key, ca)) => Some(crate::grpc::tls::server_config(cert, key, ca)?),
        None => {
            tracing::warn!(
                "INSECURE: serving plaintext gRPC without client authentication; \
                 every caller is admin. For local development only."
            );
            None
        }
    };
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(reload_on_sighup(access.clone()));
    let advertise = config.advertise.clone().unwrap_or_else(|| addr.to_string());
    let mastership = services.mastership.clone();
    match mastership.renew_lease(&advertise, config.lease_secs).await {
        Ok(()) => {}
        // Started during a store outage: it signs from its last-known key
        // sets and registers once the store answers (the lease loop).
        Err(e) if crate::keyset::store_unusable(&e) => tracing::warn!(
            node = %config.node_id,
            error = %e,
            "the store cannot be reached at start: signing from the last-known key sets; \
             management waits for the store"
        ),
        Err(e) => {
            return Err(format!(
                "cannot register node {} in the store: {e}",
                config.node_id
            ))
        }
    }
    tokio::spawn(renew_lease(services.clone(), advertise, config.lease_secs));
    tokio::spawn(watch_roles(services.clone()));
    tokio::spawn(keep_running_lifecycle(services.clone()));
    tokio::spawn(services.publisher.clone().run());
    tokio::spawn(services.children.clone().run());
    tokio::spawn(services.node.clone().keep_flushing_spool());
    tokio::spawn(services.keysets.clone().keep_current());
    if let Some(dir) = &config.trust_anchor_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("trust-anchor directory {}: {e}", dir.display()))?;
        tokio::spawn(crate::anchor_files::keep(services.clone(), dir.clone()));
    }
    if let Some(dns) = &config.dns_listen {
        let publisher = &services.publisher;
        let keys = publisher.tsig_keys.clone();
        let at = crate::publish::dns::serve(dns, publisher.served.clone(), keys).await?;
        publisher.set_dns_listening();
        tracing::info!(%at, "serving signed zones to their secondaries");
    }
    if let Some(at) = &config.metrics_listen {
        let at = crate::monitor::serve(at, services.clone()).await?;
        tracing::info!(%at, "serving metrics at /metrics");
    }
    if let Some(path) = &config.address_file {
        write_address_file(path, &addr.to_string()).await?;
    }
    let identity = services.node.hsm.identity();
    tracing::info!(
        node = %config.node_id,
        %addr,
        token = %identity.label,
        serial = %identity.serial,
        store = %config.store,
        "keymasterd listening"
    );
    let options = ServeOptions {
        max_message_bytes: config.max_message_bytes,
        tls,
        access,
        limits: CallerLimits {
            max_streams: config.max_streams_per_caller,
            sign_rate: config.sign_rate_per_caller,
        },
        forwarder,
    };
    notify_systemd("READY=1");
    serve(services.clone(), listener, options, async {
        shutdown_signal().await;
        notify_systemd("STOPPING=1");
    })
    .await
    .map_err(|e| format!("gRPC server failed: {e}"))?;
    // The token goes down in order, from here: the signing workers end
    // (closing their sessions), then the module is finalised on this
    // thread. Left to the exit, the last reference could fall on a worker
    // thread while the C library's exit handlers run, and SoftHSM's
    // clean-up then calls into an OpenSSL already cleaned up.
    let node = services.node.clone();
    let signing = services.signing.clone();
    tokio::task::block_in_place(|| {
        signing.stop();
        node.hsm.shut_down();
    });
    tracing::info!("keymasterd stopped");
    Ok(())
}

/// `keymasterd --check-config`: loads everything a start would load except
/// the store (opening SQLite creates its file; the store is checked by
/// starting), and says what it found. Nothing is served or written.
/// Long because each part a start loads is tried in turn, each with its
/// line of what was found.
pub async fn check(config: Config) -> Result<String, String> {
    let mut found = vec![format!("node {}", config.node_id)];
    for (what, addr) in [
        ("gRPC", Some(&config.listen)),
        ("DNS", config.dns_listen.as_ref()),
        ("metrics", config.metrics_listen.as_ref()),
    ] {
        if let Some(a) = addr {
            a.parse::<std::net::SocketAddr>()
                .map_err(|e| format!("{what} listen address {a}: {e}"))?;
            found.push(format!("{what} on {a}"));
        }
    }
    match &config.tls {
        Some((cert, key, ca)) => {
            crate::grpc::tls::server_config(cert, key, ca)?;
            found.push("TLS certificate, key and client CA load".into());
        }
        None => found.push("INSECURE plaintext gRPC".into()),
    }
    let access = AccessControl::load(config.access_file.as_deref())?;
    found.push(format!("access file: {} grants", access.reload()?));
    if let Some(path) = &config.tsig_keys {
        let keys = crate::tsig::TsigKeys::load(path)?;
        found.push(format!("TSIG keys: {}", keys.names().join(", ")));
    }
    if let Some(b) = bootstrapping(&config)? {
        found.push(format!(
            "RFC 9615 bootstrapping: resolver {}, anchors for {}",
            b.resolver,
            b.anchors.zones().join(", ")
        ));
    }
    if let Some(cmd) = &config.ds_submit_command {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(cmd)
            .map_err(|e| format!("DS submit command {}: {e}", cmd.display()))?;
        if m.permissions().mode() & 0o111 == 0 {
            return Err(format!(
                "DS submit command {} is not executable",
                cmd.display()
            ));
        }
    }
    match config.store.split_once(':') {
        Some(("sqlite", _)) | Some(("etcd", _)) => found.push(format!("store {}", config.store)),
        _ => {
            return Err(format!(
                "store {}: use sqlite:PATH or etcd:http://HOST:PORT[,…]",
                config.store
            ))
        }
    }
    let token_config = config.token.clone();
    let token = tokio::task::spawn_blocking(move || Token::open(&token_config))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let identity = token.identity();
    found.push(format!(
        "token {} (serial {}) opened and logged in",
        identity.label, identity.serial
    ));
    Ok(format!("configuration OK: {}", found.join("; ")))
}

/// Opens the token, saying after half a second what it waits for when
/// the token does not answer (SoftHSM2 waits on a file lock that a process
/// stopped inside a token write holds), and again every 10 s.
async fn open_token(config: &Config) -> Result<Token, String> {
    let token_config = config.token.clone();
    let opening = tokio::task::spawn_blocking(move || Token::open(&token_config));
    tokio::pin!(opening);
    let mut waited = std::time::Duration::ZERO;
    loop {
        let wait = match waited.is_zero() {
            true => std::time::Duration::from_millis(500),
            false => std::time::Duration::from_secs(10),
        };
        tokio::select! {
            opened = &mut opening => {
                return opened.map_err(|e| e.to_string())?.map_err(|e| e.to_string());
            }
            _ = tokio::time::sleep(wait) => {
                waited += wait;
                tracing::warn!(
                    token = %config.token.selector,
                    module = %config.token.module,
                    waited_s = waited.as_secs_f64(),
                    "waiting for the token: opening it (C_Initialize, C_Login, the first lookups) \
                     has not returned; another process may hold it (SoftHSM2: a process stopped \
                     inside a token write holds its lock)"
                );
            }
        }
    }
}

/// Opens the token and the store and builds the services over them; then
/// compares token and store and says what does not match.
///
/// Long because the order is the point: the token bound before any token
/// call, the state directory before the store (whether the node may start
/// without it depends on what is saved there), the spool before the node,
/// the saved key sets before the first request.
async fn open_services(config: &Config, peers: Arc<dyn Peers>) -> Result<Services, String> {
    let token = open_token(config).await?;
    crate::hsm::bound::configure(config.token_timeout, &token.identity().label);
    // Before the spool, which may be in the state directory this makes.
    let key_set_dir = match config.state_dir.clone() {
        Some(dir) => Some(
            tokio::task::spawn_blocking(move || crate::keyset::disk::KeySetDir::open(&dir))
                .await
                .map_err(|e| e.to_string())??,
        ),
        None => {
            tracing::warn!(
                "no --state-dir: started during a store outage, this node has no key set to sign with"
            );
            None
        }
    };
    // A node with last-known key sets (it has run before) starts while
    // the store cannot be reached, and signs from them.
    let has_state = match key_set_dir.clone() {
        Some(d) => tokio::task::spawn_blocking(move || d.has_saved())
            .await
            .unwrap_or(false),
        None => false,
    };
    let store = crate::store::open(
        &config.store,
        crate::store::StoreOptions {
            audit_file: config.audit_file.clone(),
            tls: config.store_tls.clone(),
            start_unreachable: has_state,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let spool = match config.spool.clone() {
        Some(path) => Some(Arc::new(
            tokio::task::spawn_blocking(move || crate::spool::Spool::open(&path))
                .await
                .map_err(|e| e.to_string())??,
        )),
        None => {
            tracing::warn!(
                "no --state-dir and no --spool: zone signing stops while the store is unreachable"
            );
            None
        }
    };
    let node = Node {
        id: config.node_id.clone(),
        hsm: Arc::new(token),
        store,
        clock: Arc::new(SystemClock),
        spool,
    };
    let settings = Settings {
        limits: config.limits.clone(),
        ds_submit_command: config.ds_submit_command.clone(),
        expiry_warning: config.expiry_warning,
        tsig_keys: match &config.tsig_keys {
            Some(path) => crate::tsig::TsigKeys::load(path)?,
            None => Default::default(),
        },
        key_set_dir: key_set_dir.clone(),
        bootstrapping: bootstrapping(config)?,
        review_command: config.review_command.clone(),
    };
    let services = Services::new(node, settings, Some(peers));
    if let Some(dir) = key_set_dir {
        let keysets = services.keysets.clone();
        let (loaded, oldest) = tokio::task::spawn_blocking(move || keysets.load_saved())
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(
            zones = loaded,
            dir = %dir.path().display(),
            oldest_read_at = %oldest.map(crate::clock::rfc3339).unwrap_or_else(|| "-".into()),
            "last-known key sets loaded from disk; each is read from the store again before use"
        );
    }
    match services.inventory.reconcile().await {
        Ok((0, 0)) => {}
        Ok((orphans, missing)) => tracing::warn!(
            orphans,
            missing,
            "token and store disagree; see the warnings above"
        ),
        Err(e) => tracing::warn!(error = %e, "could not reconcile token and store"),
    }
    Ok(services)
}

/// Writes the listening address for whoever started this node (tests,
/// scripts), atomically, off the async threads.
async fn write_address_file(path: &std::path::Path, addr: &str) -> Result<(), String> {
    let (path, addr) = (path.to_path_buf(), addr.to_string());
    tokio::task::spawn_blocking(move || {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, addr)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Tells systemd how the service stands when it started it as
/// `Type=notify` (sd_notify(3)): one datagram to `$NOTIFY_SOCKET`, a path
/// or, with a leading '@', an abstract socket. Without it, nothing.
fn notify_systemd(state: &str) {
    use std::os::unix::ffi::OsStrExt;
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = std::os::unix::net::UnixDatagram::unbound().and_then(|sock| {
        match target.as_bytes().strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                sock.send_to_addr(state.as_bytes(), &addr)
            }
            None => sock.send_to(state.as_bytes(), &target),
        }
    });
    if let Err(e) = sent {
        tracing::warn!(error = %e, state, "cannot tell systemd (NOTIFY_SOCKET)");
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
    }
}

/// Re-reads the access file on every SIGHUP; a bad file keeps the old rules.
async fn reload_on_sighup(access: Arc<AccessControl>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot watch SIGHUP; the access file is not reloadable");
        return;
    };
    while hup.recv().await.is_some() {
        match access.reload() {
            Ok(n) => tracing::info!(grants = n, "access file reloaded"),
            Err(e) => tracing::error!(error = %e, "access file not reloaded; the old rules stay"),
        }
    }
}

/// Renews this node's liveness lease every third of its length.
/// Also runs automatic failover at the same pace.
async fn renew_lease(services: Arc<Services>, advertise: String, lease_secs: u64) {
    let period = std::time::Duration::from_millis(lease_secs * 1000 / 3);
    let mastership = &services.mastership;
    loop {
        services.node.clock.sleep(period).await;
        if let Err(e) = mastership.renew_lease(&advertise, lease_secs).await {
            tracing::warn!(error = %e, "cannot renew the node lease");
        }
        if let Err(e) = mastership.failover_pass().await {
            tracing::warn!(error = %e, "automatic failover pass failed");
        }
        if let Err(e) = mastership.notice_role_changes().await {
            tracing::warn!(error = %e, "cannot read the zones' Key Masters");
        }
    }
}

/// Runs the rollover engine; should it ever stop (a bug), says so loudly
/// and starts it again, since rollovers and DS checks must not silently end.
async fn keep_running_lifecycle(services: Arc<Services>) {
    loop {
        let run = tokio::spawn(services.lifecycle.clone().run());
        if let Err(e) = run.await {
            tracing::error!(error = %e, "the rollover engine stopped; starting it again");
        }
        services
            .node
            .clock
            .sleep(std::time::Duration::from_secs(1))
            .await;
    }
}

/// Learns of role changes as the store reports them (etcd watches); the
/// lease renewal looks as well, for stores that cannot watch.
async fn watch_roles(services: Arc<Services>) {
    let mastership = &services.mastership;
    if let Err(e) = mastership.notice_role_changes().await {
        tracing::warn!(error = %e, "cannot read the zones' Key Masters");
    }
    let Some(mut changes) = services.node.store.watch_zones().await else {
        return;
    };
    while changes.recv().await.is_some() {
        if let Err(e) = mastership.notice_role_changes().await {
            tracing::warn!(error = %e, "cannot read the zones' Key Masters");
        }
    }
}

/// What RFC 9615 bootstrapping runs with: a resolver and trust anchors,
/// both or neither.
fn bootstrapping(
    config: &Config,
) -> Result<Option<crate::children::bootstrap::Bootstrapping>, String> {
    match (&config.bootstrap_resolver, &config.bootstrap_anchors) {
        (None, None) => Ok(None),
        (Some(resolver), Some(path)) => Ok(Some(crate::children::bootstrap::Bootstrapping {
            resolver: *resolver,
            anchors: crate::children::validate::Anchors::load(path)?,
        })),
        _ => Err(
            "--bootstrap-resolver and --bootstrap-anchors go together: signals are found \
             through the one and validated from the other"
                .into(),
        ),
    }
}
