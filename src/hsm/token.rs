//! One PKCS#11 token: loading the module, choosing the token, logging in once
//! for the life of the process, and a pool of sessions for the workers.
//!
//! In PKCS#11 the login belongs to the process and closing its last session
//! logs it out and invalidates every object handle (TOKEN.md, Login belongs to the process). So the token
//! keeps one session open for as long as it lives (the "keeper"), logs in on
//! it once, and hands out further sessions from a pool.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use super::error::{HsmError, Result};
use super::identity::TokenIdentity;
use super::objects;
use super::retry::retry_transient;
use super::uri::TokenSelector;
use crate::secret::Secret;

/// How to reach a token.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    /// Path of the PKCS#11 module (shared library).
    pub module: String,
    /// Which token of the module.
    pub selector: TokenSelector,
    /// The user PIN.
    pub pin: Secret,
    /// Sign with session-object copies of the private keys (see
    /// `Token::signing_handle`).
    pub session_key_copies: bool,
}

/// An open, logged-in token.
pub struct Token {
    ctx: Pkcs11,
    /// The token's slot; found again by `selector` after a
    /// re-initialisation, since a token that went and came back may sit in
    /// another slot.
    slot: RwLock<Slot>,
    selector: TokenSelector,
    identity: TokenIdentity,
    /// Keeps the login alive; also used for management (key generation).
    keeper: Mutex<Session>,
    idle: Mutex<Vec<Session>>,
    max_sessions: usize,
    /// CKA_ID → the handle to sign with. Handles are valid in every
    /// session of the process until the object is destroyed or the module
    /// re-initialised.
    handles: RwLock<HashMap<Vec<u8>, CachedKey>>,
    /// Whether to make session-object copies to sign with; turned off for
    /// good when the token refuses one.
    session_key_copies: AtomicBool,
    /// Kept to log in again after re-initialising the module.
    pin: Secret,
    /// Grows by one on every re-initialisation; sessions of an older
    /// generation are dead.
    generation: AtomicU64,
    /// Held shared by every operation on a session, exclusively while the
    /// module is re-initialised.
    gate: RwLock<()>,
    /// Set once the module is finalised for the process's exit: nothing
    /// re-initialises it after that.
    closed: AtomicBool,
}

#[derive(Debug, Clone, Copy)]
struct CachedKey {
    handle: ObjectHandle,
    /// The handle is a session-object copy made by this process.
    session_copy: bool,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("identity", &self.identity)
            .finish()
    }
}

impl Token {
    /// Loads the module, finds the token and logs in.
    pub fn open(config: &TokenConfig) -> Result<Token> {
        let ctx = Pkcs11::new(&config.module).map_err(|e| HsmError::ModuleNotFound {
            path: config.module.clone(),
            reason: match e {
                CkError::LibraryLoading(l) => l.to_string(),
                other => other.to_string(),
            },
        })?;
        initialize(&ctx)?;
        let (slot, identity, keeper, info) = attach_patiently(&ctx, config)?;
        let max_sessions = match info.max_rw_session_count() {
            cryptoki::slot::Limit::Max(n) => (n as usize).max(2),
            _ => 64,
        };
        Ok(Token {
            ctx,
            slot: RwLock::new(slot),
            selector: config.selector.clone(),
            identity,
            keeper: Mutex::new(keeper),
            idle: Mutex::new(Vec::new()),
            max_sessions,
            handles: RwLock::new(HashMap::new()),
            session_key_copies: AtomicBool::new(config.session_key_copies),
            pin: config.pin.clone(),
            generation: AtomicU64::new(0),
            gate: RwLock::new(()),
            closed: AtomicBool::new(false),
        })
    }

    pub fn identity(&self) -> &TokenIdentity {
        &self.identity
    }

    /// How many workers may each own a session: the token's limit less the
    /// keeper, and no more than the cores (more add nothing: TOKEN.md, Sessions and threads).
    pub fn worker_count(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        cores.min(self.max_sessions.saturating_sub(1)).max(1)
    }

    /// Runs `f` with the management session (key generation, lookups).
    pub(crate) fn with_keeper<T>(&self, f: impl FnOnce(&Session) -> Result<T>) -> Result<T> {
        let _open = self.gate.read().unwrap_or_else(|p| p.into_inner());
        let guard = self.keeper.lock().unwrap_or_else(|p| p.into_inner());
        f(&guard)
    }

    /// The gate every session operation holds shared.
    pub(crate) fn gate(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn slot(&self) -> Slot {
        *self.slot.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `op`, and once more after re-initialising the module if it
    /// reports a key not found: another process may have made the key
    /// after this one last wrote to the token, and SoftHSM shows it only
    /// to a fresh module (TOKEN.md, Several processes on one token). Only
    /// then is "not found" believed. Likewise when the module's sessions or
    /// slot are gone (the token was removed and is back, the module lost
    /// its state): a fresh module finds the token again (TOKEN.md, A token
    /// that goes and comes back).
    pub fn again_on_fresh_module<T>(&self, mut op: impl FnMut() -> Result<T>) -> Result<T> {
        let seen = self.generation();
        match op() {
            Err(HsmError::KeyNotFound { .. }) => {
                self.reinitialise(seen)?;
                op()
            }
            Err(e) if e.is_stale() => {
                tracing::warn!(error = %e, "token: sessions lost; re-initialising the module");
                self.reinitialise(seen)?;
                op()
            }
            r => r,
        }
    }

    /// Whether the token answers: its token information read (SoftHSM reads
    /// the token's files for it), once more through a fresh module when the
    /// module's state for it is gone (docs/TOKEN.md, A token that goes and
    /// comes back).
    pub fn check(&self) -> Result<()> {
        let seen = self.generation();
        let look = || -> Result<()> {
            let _open = self.gate();
            self.ctx.get_token_info(self.slot())?;
            self.with_keeper(|s| Ok(s.get_session_info().map(|_| ())?))
        };
        match look() {
            Err(e) if e.is_stale() || matches!(e, HsmError::Pkcs11 { .. }) => {
                // The health service logs the state change once; this
                // repeats at each look while the token is away.
                tracing::debug!(error = %e, "token: not answering; re-initialising the module");
                self.reinitialise(seen)?;
                look()
            }
            r => r,
        }
    }

    /// Re-initialises the module (C_Finalize, C_Initialize, log in again)
    /// unless that already happened since `seen`. SoftHSM shows a process
    /// the keys other processes made after its own last write only after
    /// this (TOKEN.md, Several processes on one token): so "key not found" is only believed afterwards.
    /// Every session and handle of the old generation is dead.
    fn reinitialise(&self, seen: u64) -> Result<()> {
        let _closed = self.gate.write().unwrap_or_else(|p| p.into_inner());
        if self.closed.load(Ordering::SeqCst) {
            return Err(HsmError::Other(
                "the token is closed: keymasterd is stopping".into(),
            ));
        }
        if self.generation() != seen {
            return Ok(());
        }
        let mut keeper = self.keeper.lock().unwrap_or_else(|p| p.into_inner());
        // Handles of a finalised module may be reused by the new one: the
        // old Session values must never close them, so they are forgotten.
        for s in self
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            std::mem::forget(s);
        }
        self.handles
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let _ = self.ctx.clone().finalize();
        retry_transient(|| {
            match self
                .ctx
                .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            {
                Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
                r => r.map_err(HsmError::from),
            }
        })?;
        let (slot, found) = find_token(&self.ctx, &self.selector)?;
        if found.serial != self.identity.serial {
            return Err(HsmError::Other(format!(
                "the token now found for {} has serial {}, not {}: refusing to use another token",
                self.selector, found.serial, self.identity.serial
            )));
        }
        *self.slot.write().unwrap_or_else(|p| p.into_inner()) = slot;
        let fresh = retry_transient(|| Ok(self.ctx.open_rw_session(slot)?))?;
        login(&fresh, &self.pin, &self.identity)?;
        std::mem::forget(std::mem::replace(&mut *keeper, fresh));
        self.generation.fetch_add(1, Ordering::SeqCst);
        crate::metrics::get().token_reinitialisations.inc();
        tracing::debug!(
            generation = self.generation(),
            "PKCS#11 module re-initialised"
        );
        Ok(())
    }

    /// Closes every session this process keeps and finalises the module
    /// (C_Finalize) on the calling thread, once; see `Hsm::shut_down`.
    pub fn shut_down(&self) {
        let _closed = self.gate.write().unwrap_or_else(|p| p.into_inner());
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.handles
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        // C_Finalize closes the keeper's session (and so logs out) with
        // every other; its Session value must not close it again.
        let keeper = self.keeper.lock().unwrap_or_else(|p| p.into_inner());
        match self.ctx.clone().finalize() {
            Ok(()) => tracing::info!("token closed (C_Finalize)"),
            Err(e) => tracing::warn!(error = %e, "token: C_Finalize failed"),
        }
        drop(keeper);
    }

    /// Takes a session from the pool (opening one if none is idle). It goes
    /// back to the pool when the returned guard is dropped.
    pub fn session(&self) -> Result<PooledSession<'_>> {
        let _open = self.gate();
        let generation = self.generation();
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let session = match idle {
            Some(s) => s,
            None => retry_transient(|| Ok(self.ctx.open_rw_session(self.slot())?))?,
        };
        Ok(PooledSession {
            token: self,
            session: Some(session),
            generation,
        })
    }

    /// The handle to sign with for the private key with this CKA_ID.
    ///
    /// SoftHSM re-reads its object store on every `C_Sign` with a token
    /// object (TOKEN.md, Signing with a session copy); a session-object copy
    /// (`C_CopyObject` with `CKA_TOKEN` false) skips that. The copy stays in
    /// the token, keeps `CKA_SENSITIVE` and cannot be made extractable, and
    /// disappears with the process. Tokens that refuse to copy are used
    /// directly.
    pub(crate) fn signing_handle(&self, session: &Session, id: &[u8]) -> Result<ObjectHandle> {
        if let Some(k) = self
            .handles
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
        {
            return Ok(k.handle);
        }
        let object = objects::find_private(session, id)?;
        let mut cached = CachedKey {
            handle: object,
            session_copy: false,
        };
        if self.session_key_copies.load(Ordering::Relaxed) {
            let keeper = self.keeper.lock().unwrap_or_else(|p| p.into_inner());
            match keeper.copy_object(object, &[Attribute::Token(false)]) {
                Ok(copy) => {
                    cached = CachedKey {
                        handle: copy,
                        session_copy: true,
                    }
                }
                Err(e) => {
                    tracing::info!(error = %HsmError::from(e), "token refuses session copies of keys; signing with token objects");
                    self.session_key_copies.store(false, Ordering::Relaxed);
                }
            }
        }
        let mut handles = self.handles.write().unwrap_or_else(|p| p.into_inner());
        match handles.get(id) {
            // Another worker was quicker; keep its handle, drop ours.
            Some(k) => {
                if cached.session_copy {
                    let keeper = self.keeper.lock().unwrap_or_else(|p| p.into_inner());
                    let _ = keeper.destroy_object(cached.handle);
                }
                Ok(k.handle)
            }
            None => {
                handles.insert(id.to_vec(), cached);
                Ok(cached.handle)
            }
        }
    }

    /// Forgets the cached handle of a key, destroying its session copy.
    pub fn forget_handle(&self, id: &[u8]) {
        let removed = self
            .handles
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if let Some(CachedKey {
            handle,
            session_copy: true,
        }) = removed
        {
            let keeper = self.keeper.lock().unwrap_or_else(|p| p.into_inner());
            let _ = keeper.destroy_object(handle);
        }
    }
}

/// A session borrowed from the token's pool.
pub struct PooledSession<'a> {
    token: &'a Token,
    session: Option<Session>,
    generation: u64,
}

impl<'a> PooledSession<'a> {
    pub fn token(&self) -> &'a Token {
        self.token
    }

    /// Replaces a session of an older module generation with a new one.
    /// Call with the gate held.
    pub(crate) fn renew_if_stale(&mut self) -> Result<()> {
        let current = self.token.generation();
        if self.generation == current {
            return Ok(());
        }
        if let Some(old) = self.session.take() {
            std::mem::forget(old);
        }
        self.session = Some(retry_transient(|| {
            Ok(self.token.ctx.open_rw_session(self.token.slot())?)
        })?);
        self.generation = current;
        Ok(())
    }
}

impl std::ops::Deref for PooledSession<'_> {
    type Target = Session;
    fn deref(&self) -> &Session {
        self.session.as_ref().expect("session present until drop")
    }
}

impl Drop for PooledSession<'_> {
    fn drop(&mut self) {
        if self.generation != self.token.generation() {
            if let Some(s) = self.session.take() {
                std::mem::forget(s);
            }
            return;
        }
        if let Some(s) = self.session.take() {
            self.token
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(s);
        }
    }
}

fn login(session: &Session, pin: &Secret, identity: &TokenIdentity) -> Result<()> {
    let pin = AuthPin::new(pin.expose().into());
    retry_transient(|| match session.login(UserType::User, Some(&pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => Err(HsmError::WrongPin {
            token: identity.label.clone(),
        }),
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(HsmError::PinLocked {
            token: identity.label.clone(),
        }),
        Err(e) => Err(e.into()),
    })
}

/// C_Initialize, which a module already initialised (by this process)
/// may answer as such.
fn initialize(ctx: &Pkcs11) -> Result<()> {
    retry_transient(|| {
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
            r => r.map_err(HsmError::from),
        }
    })
}

/// How long to look for the token before believing it absent.
const TOKEN_LOOKS: u32 = 15;
const TOKEN_LOOK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

/// Finds the token, opens the management session and logs in, looking
/// again with a fresh module for up to 3 s when the token is not there or
/// answers as a token being written does: SoftHSM lists a token only if
/// it could read its files at C_Initialize, and while another process
/// writes them shows none, fails C_GetTokenInfo or says its PIN is not
/// set (TOKEN.md, Several processes on one token). A wrong PIN is never
/// tried again (the token would lock); an absent token is reported after
/// the last look, naming the tokens present.
fn attach_patiently(
    ctx: &Pkcs11,
    config: &TokenConfig,
) -> Result<(Slot, TokenIdentity, Session, cryptoki::slot::TokenInfo)> {
    let attach = || -> Result<_> {
        let (slot, identity) = find_token(ctx, &config.selector)?;
        let keeper = retry_transient(|| Ok(ctx.open_rw_session(slot)?))?;
        login(&keeper, &config.pin, &identity)?;
        let info = retry_transient(|| Ok(ctx.get_token_info(slot)?))?;
        Ok((slot, identity, keeper, info))
    };
    let mut look = 1;
    loop {
        match attach() {
            Err(e) if look < TOKEN_LOOKS && seen_while_written(&e) => {
                tracing::debug!(error = %e, look, "token not usable yet; looking again with a fresh module");
                look += 1;
                std::thread::sleep(TOKEN_LOOK_INTERVAL);
                let _ = ctx.clone().finalize();
                initialize(ctx)?;
            }
            r => return r,
        }
    }
}

/// What SoftHSM answers about a token another process is writing.
fn seen_while_written(e: &HsmError) -> bool {
    e.is_transient()
        || matches!(e, HsmError::TokenNotFound { .. })
        || matches!(
            e,
            HsmError::Pkcs11 {
                rv: RvError::UserPinNotInitialized | RvError::TokenNotRecognized,
                ..
            }
        )
}

fn find_token(ctx: &Pkcs11, selector: &TokenSelector) -> Result<(Slot, TokenIdentity)> {
    let slots = retry_transient(|| Ok(ctx.get_slots_with_initialized_token()?))?;
    let mut present = Vec::new();
    for slot in slots {
        let info = retry_transient(|| Ok(ctx.get_token_info(slot)?))?;
        let identity = TokenIdentity {
            label: info.label().trim_end().to_string(),
            serial: info.serial_number().trim_end().to_string(),
            manufacturer: info.manufacturer_id().trim_end().to_string(),
            model: info.model().trim_end().to_string(),
        };
        if selector.matches(&identity) {
            return Ok((slot, identity));
        }
        present.push(format!("{:?} (serial {})", identity.label, identity.serial));
    }
    Err(HsmError::TokenNotFound {
        selector: selector.to_string(),
        present: if present.is_empty() {
            "none".to_string()
        } else {
            present.join(", ")
        },
    })
}
