//! `App`: the one shared state of a running service — configuration, the
//! database pool, the signing keys, the password hasher, and the in-memory
//! record of token use.

use crate::config::Config;
use crate::db::signing_keys::Window;
use crate::db::{self, Pool};
use crate::domain::audit::{self, Entry, FailureBudget, ThrottleNotes};
use crate::domain::blocking::Blocking;
use crate::domain::email::Links;
use crate::domain::password::Hasher;
use crate::domain::throttle::Throttle;
use crate::domain::token_cache::Verified;
use crate::domain::token_use::TokenUse;
use crate::domain::tokens::{Expectations, KeyRing};
use crate::error::ApiError;
use crate::locks::Unpoisoned;
use crate::ops::metrics::Metrics;
use r2d2::PooledConnection;
use r2d2_sqlite::SqliteConnectionManager;
use std::sync::{Arc, Mutex, RwLock};

pub type Conn = PooledConnection<SqliteConnectionManager>;

pub struct App {
    pub config: Config,
    pub db: Pool,
    pub hasher: Hasher,
    pub expect: Expectations,
    pub token_use: TokenUse,
    pub metrics: Metrics,
    pub throttle: Throttle,
    /// Requests that mail a link to an address someone types (forgotten
    /// password, resent verification): counted per address and client, for
    /// existing and unknown accounts alike.
    pub mail_requests: Throttle,
    /// Tokens already verified (see `domain::token_cache`).
    pub verified: Verified,
    /// The secret behind rotated refresh tokens (`db::refresh_tokens`).
    pub rotation_secret: Vec<u8>,
    /// How long a retired key's access tokens may live (`domain::key_ring`).
    pub window: Window,
    /// The key of the audit log's hashes of unknown emails (`domain::audit`).
    pub audit_secret: Vec<u8>,
    /// Which login refusals already have their audit event.
    pub throttle_notes: ThrottleNotes,
    /// How many more refused logins the audit log takes today.
    pub failure_budget: FailureBudget,
    /// Picture uploads are decoded one at a time (see `web::handlers::images`).
    pub image_lock: Mutex<()>,
    /// Where slow work (hashing, picture decoding) runs.
    pub blocking: Blocking,
    keys: RwLock<Arc<KeyRing>>,
}

/// What `App::new` needs besides the configuration.
pub struct Parts {
    pub db: Pool,
    pub blocking: Blocking,
    pub hasher: Hasher,
    pub keys: KeyRing,
    pub rotation_secret: Vec<u8>,
    pub window: Window,
    pub audit_secret: Vec<u8>,
}

impl App {
    pub fn new(config: Config, parts: Parts) -> App {
        let expect = Expectations {
            issuer: config.issuer.clone(),
            audience: config.audience().to_string(),
            leeway: config.leeway,
        };
        let throttle = Throttle::new(config.login_max_failures, config.login_window);
        let mail_requests = Throttle::new(config.login_max_failures, config.login_window);
        let throttle_notes = ThrottleNotes::new(config.login_window);
        App {
            config,
            db: parts.db,
            hasher: parts.hasher,
            expect,
            token_use: TokenUse::default(),
            metrics: Metrics::default(),
            throttle,
            mail_requests,
            verified: Verified::default(),
            rotation_secret: parts.rotation_secret,
            window: parts.window,
            audit_secret: parts.audit_secret,
            throttle_notes,
            failure_budget: FailureBudget::default(),
            image_lock: Mutex::new(()),
            blocking: parts.blocking,
            keys: RwLock::new(Arc::new(parts.keys)),
        }
    }

    pub fn conn(&self) -> Result<Conn, ApiError> {
        Ok(self.db.get()?)
    }

    /// Where mailed links point and how long they work.
    pub fn links(&self) -> Links {
        Links {
            public_url: self.config.public_url.as_ref().map_or_else(
                || format!("http://{}", self.config.listen),
                |url| url.0.clone(),
            ),
            verify_ttl: self.config.verify_ttl,
            reset_ttl: self.config.reset_ttl,
        }
    }

    /// The signing keys in force now.
    pub fn keys(&self) -> Arc<KeyRing> {
        self.keys.read().unpoisoned().clone()
    }

    /// Appends an audit event inside the caller's write transaction `tx`,
    /// and counts it.
    pub fn record(&self, tx: &db::Connection, entry: &Entry<'_>) -> db::Result<()> {
        audit::record(tx, entry)?;
        // Counted before the commit: a transaction that then rolls back
        // (an error path) overcounts by its events.
        self.metrics.audited(entry.event.name());
        Ok(())
    }

    /// Swaps in reloaded keys (after a rotation, or when one is dropped).
    pub fn replace_keys(&self, keys: KeyRing) {
        *self.keys.write().unpoisoned() = Arc::new(keys);
        self.verified.clear();
    }
}
