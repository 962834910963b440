//! The service's background threads. The first rereads the signing keys every few
//! seconds (so a `latchkey keys rotate` run by another process takes effect,
//! and retired keys are dropped once nothing they signed is alive), rotates
//! the key on `--key-rotation-interval`, and writes gathered token use. The
//! second sweeps expired rows every `--cleanup-interval`. The third answers
//! forgotten-password requests and sends the outbox's mails. All wake at once when the service stops; a sweep in
//! progress stops between batches, the sender between mails.

use crate::app::App;
use crate::clock;
use crate::domain::email;
use crate::domain::key_ring::{self, KeyError};
use crate::mail;
use crate::ops::cleanup;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A stop flag threads can sleep on.
#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    /// Sleeps up to `period`; true once the service is stopping.
    fn wait(&self, period: Duration) -> bool {
        let stopped = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        let (stopped, _) = self
            .wake
            .wait_timeout_while(stopped, period, |stopped| !*stopped)
            .unwrap_or_else(|p| p.into_inner());
        *stopped
    }

    fn is_set(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct Background {
    stop: Arc<Stop>,
    threads: Vec<JoinHandle<()>>,
}

pub fn start(app: Arc<App>) -> Background {
    let stop = Arc::new(Stop::default());
    let spawn = |name: &str, body: fn(&App, &Stop)| {
        let (app, stop) = (app.clone(), stop.clone());
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(&app, &stop))
            .expect("spawning a background thread")
    };
    let threads = vec![
        spawn("keys", keys_and_activity),
        spawn("cleanup", cleanup),
        spawn("mail", send_mail),
    ];
    Background { stop, threads }
}

impl Background {
    /// Wakes the threads, lets them finish (a last flush), and waits.
    pub fn stop(self) {
        *self.stop.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.stop.wake.notify_all();
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

fn keys_and_activity(app: &App, stop: &Stop) {
    let flush_every = Duration::from_secs(crate::domain::token_use::FLUSH_SECONDS);
    let mut flushed = Instant::now();
    while !stop.wait(Duration::from_secs(key_ring::RELOAD_SECONDS)) {
        if let Err(e) = refresh_keys(app) {
            log::error!("reloading signing keys: {e}");
        }
        if flushed.elapsed() >= flush_every {
            flushed = Instant::now();
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
    // Only a key that has served its period is worth a write transaction.
    if interval > 0
        && app.keys().active().created_at <= clock::now() - interval
        && let Some(kid) = key_ring::rotate(&mut conn, Some(clock::now() - interval))?
    {
        log::info!("rotated the signing key: {kid} signs from now on");
    }
    let published = key_ring::published_kids(&conn, app.window)?;
    let current: Vec<String> = app.keys().jwks().keys.into_iter().map(|k| k.kid).collect();
    if published != current {
        app.replace_keys(key_ring::load(&mut conn, app.window)?);
        log::info!("signing keys reloaded: {}", published.join(", "));
    }
    Ok(())
}

fn cleanup(app: &App, stop: &Stop) {
    while !stop.wait(Duration::from_secs(app.config.cleanup_interval)) {
        let swept = app
            .db
            .get()
            .map_err(|e| e.to_string())
            .and_then(|mut conn| {
                cleanup::sweep(&mut conn, clock::now(), app.window, &|| stop.is_set())
                    .map_err(|e| e.to_string())
            });
        match swept {
            Ok(removed) => {
                for (table, rows) in removed.by_table() {
                    app.metrics.cleaned(table, rows);
                }
                log::info!("cleanup removed {removed:?}");
            }
            Err(e) => log::error!("cleanup: {e}"),
        }
    }
}

/// How often the sender looks for due mails. Polling the indexed outbox once
/// a second costs one small read, and keeps queueing free of signalling.
const MAIL_POLL: Duration = Duration::from_secs(1);

fn send_mail(app: &App, stop: &Stop) {
    let settings = &app.config.mail;
    let links = app.links();
    loop {
        let pass = app
            .db
            .get()
            .map_err(|e| e.to_string())
            .and_then(|mut conn| {
                email::answer_all_forgot(&mut conn, &links, &clock::now)
                    .map_err(|e| e.to_string())?;
                mail::sender::pass(&mut conn, &clock::now, &|| stop.is_set(), &|m| {
                    mail::delivery::deliver(settings, m)
                })
                .map_err(|e| e.to_string())
            });
        match pass {
            Ok(done) => app.metrics.mails(done.sent, done.failed),
            Err(e) => log::error!("sending mail: {e}"),
        }
        if stop.wait(MAIL_POLL) {
            return;
        }
    }
}
