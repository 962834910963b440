//! `latchkey serve`: open the database, load the keys, bind, announce
//! `listening on ADDR`, serve until SIGTERM or SIGINT, then drain and close.

use crate::app::{App, Parts};
use crate::config::{Config, PublicUrl};
use crate::db::{self, settings};
use crate::domain::audit;
use crate::domain::blocking::Blocking;
use crate::domain::jwt_provider;
use crate::domain::key_ring;
use crate::domain::password::Hasher;
use crate::ops::background;
use crate::ops::error::OpsError;
use crate::ops::notify;
use crate::transport::workers::{self, Workers};
use crate::transport::{self, Stopper};
use crate::web::service::{self, Service};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

/// Hashes waiting beyond the ones running: enough for a login burst from a
/// few dozen clients, short enough that a flood gets a fast 503.
const HASH_QUEUE_PER_CORE: usize = 8;

/// Runs the service until a stop signal; `Ok` means a clean stop.
pub fn run(mut config: Config) -> Result<(), OpsError> {
    let started = Instant::now();
    jwt_provider::install_provider();
    let opened = |error| OpsError::Open {
        path: config.db.clone(),
        error,
    };
    // One connection per worker, plus one each for the three background
    // threads, so a long cleanup sweep never makes a request wait for one.
    let connections = u32::try_from(config.threads().saturating_add(3)).unwrap_or(u32::MAX);
    let pool = db::open(&config.db, connections).map_err(opened)?;
    let mut conn = pool.get().map_err(|e| opened(db::OpenError::Pool(e)))?;
    db::migrate(&mut conn).map_err(opened)?;
    let window = key_ring::window_for(config.access_ttl, config.leeway);
    key_ring::record(&conn, window, config.jwks_max_age)?;
    let keys = key_ring::load(&mut conn, window)?;
    let (rotation_secret, audit_secret) = db::write(&mut conn, |tx| {
        settings::set_i64(tx, settings::AUDIT_RETENTION, config.audit_retention)?;
        Ok::<_, db::Error>((
            settings::secret(tx, settings::ROTATION_SECRET)?,
            settings::secret(tx, audit::EMAIL_SECRET)?,
        ))
    })?;
    drop(conn);

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Slow work steps aside from its worker slot (see `transport::workers`).
    let blocking = Blocking::new(|work| workers::step_aside(work));
    let hasher = Hasher::new(cores, cores * HASH_QUEUE_PER_CORE).with_blocking(blocking);
    // Requests waiting on the hasher step aside from their worker slot; one
    // spare thread per hashing place keeps `threads` slots for everyone else.
    let workers = Workers::new(config.threads(), cores + cores * HASH_QUEUE_PER_CORE);
    let options = transport::Options {
        idle_timeout: config.idle_timeout,
        request_timeout: config.request_timeout,
        max_connections: config.max_connections,
        body_bytes: service::BODY_LIMIT,
        max_body_bytes: service::max_body_limit(config.max_image_bytes),
    };
    let listener = TcpListener::bind(config.listen).map_err(|error| OpsError::Bind {
        addr: config.listen,
        error,
    })?;
    let address = listener.local_addr()?;
    let stopper = Stopper::new(&listener)?;
    // Links in mails point at the bound address unless told otherwise.
    config
        .public_url
        .get_or_insert_with(|| PublicUrl(format!("http://{address}")));
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    let parts = Parts {
        db: pool,
        blocking,
        hasher,
        keys,
        rotation_secret,
        window,
        audit_secret,
    };
    let app = Arc::new(App::new(config, parts));
    let background = background::start(app.clone())?;

    let watcher = {
        let stopper = stopper.clone();
        let handle = signals.handle();
        let thread = std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                log::info!("signal {signal}: stopping");
                notify_systemd("STOPPING=1");
                stopper.stop();
            }
        });
        (thread, handle)
    };

    println!("listening on {address}");
    let _ = std::io::stdout().flush();
    notify_systemd(&format!("READY=1\nSTATUS=listening on {address}"));
    log::info!(
        "latchkey {} serving {} with {} workers (ready in {} ms)",
        env!("CARGO_PKG_VERSION"),
        app.config.db.display(),
        app.config.threads(),
        started.elapsed().as_millis()
    );

    let service = Arc::new(Service(app.clone()));
    let served = transport::serve(listener, options, workers.clone(), service, stopper);
    workers.shutdown();
    background.stop();
    watcher.1.close();
    let _ = watcher.0.join();
    served?;
    log::info!("stopped");
    Ok(())
}

/// Tells systemd (`Type=notify`) about readiness and stopping; a no-op
/// outside systemd.
fn notify_systemd(state: &str) {
    if let Err(e) = notify::notify(std::env::var_os("NOTIFY_SOCKET").as_deref(), state) {
        log::warn!("telling systemd {state:?}: {e}");
    }
}
