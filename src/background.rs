//! The service's background thread. Every few seconds it rereads the signing
//! keys (so a `latchkey keys rotate` run by another process takes effect,
//! and retired keys are dropped once nothing they signed is alive), rotates
//! the key on `--key-rotation-interval`, and writes gathered token use. It
//! wakes at once when the service stops, and flushes one last time.

use crate::app::App;
use crate::clock;
use crate::keystore::{self, KeyError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Background {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: JoinHandle<()>,
}

pub fn start(app: Arc<App>) -> Background {
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let signal = stop.clone();
    let thread = std::thread::Builder::new()
        .name("background".into())
        .spawn(move || run(&app, &signal))
        .expect("spawning the background thread");
    Background { stop, thread }
}

impl Background {
    /// Wakes the thread, lets it flush, and waits for it.
    pub fn stop(self) {
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
        let _ = self.thread.join();
    }
}

fn run(app: &App, stop: &(Mutex<bool>, Condvar)) {
    let keys_every = Duration::from_secs(keystore::RELOAD_SECONDS);
    let flush_every = Duration::from_secs(crate::activity::FLUSH_SECONDS);
    let (mut keys_at, mut flush_at) = (Instant::now(), Instant::now());
    loop {
        let (flag, wake) = stop;
        let stopped = flag.lock().unwrap_or_else(|p| p.into_inner());
        let (stopped, _) = wake
            .wait_timeout_while(stopped, Duration::from_secs(1), |stopped| !*stopped)
            .unwrap_or_else(|p| p.into_inner());
        if *stopped {
            break;
        }
        drop(stopped);
        if keys_at.elapsed() >= keys_every {
            keys_at = Instant::now();
            if let Err(e) = refresh_keys(app) {
                log::error!("reloading signing keys: {e}");
            }
        }
        if flush_at.elapsed() >= flush_every {
            flush_at = Instant::now();
            flush(app);
        }
    }
    flush(app);
}

fn flush(app: &App) {
    match app.db.get() {
        Ok(mut conn) => {
            if let Err(e) = app.activity.flush(&mut conn) {
                log::error!("recording token use: {e}");
            }
        }
        Err(e) => log::error!("recording token use: {e}"),
    }
}

fn refresh_keys(app: &App) -> Result<(), KeyError> {
    let mut conn = app.db.get().map_err(|e| KeyError(e.to_string()))?;
    let interval = app.config.key_rotation_interval as i64;
    if interval > 0 {
        if let Some(kid) = keystore::rotate(&mut conn, Some(clock::now() - interval))? {
            log::info!("rotated the signing key: {kid} signs from now on");
        }
    }
    let published = keystore::published_kids(&conn, app.window)?;
    let current: Vec<String> = app.keys().jwks().keys.into_iter().map(|k| k.kid).collect();
    if published != current {
        app.replace_keys(keystore::load(&mut conn, app.window)?);
        log::info!("signing keys reloaded: {}", published.join(", "));
    }
    Ok(())
}
