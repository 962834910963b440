//! The service's background threads. The first rereads the signing keys every
//! second (so a `latchkey keys rotate` or `keys revoke` run by another
//! process takes effect, a waiting key starts signing on time, and retired
//! keys are dropped once nothing they signed is alive), pre-publishes a new
//! key every `--key-rotation-interval`, and writes gathered token use. The
//! second sweeps expired rows every `--cleanup-interval`. The third answers
//! forgotten-password requests and sends the outbox's mails. All wake at
//! once when the service stops; a sweep in progress stops between batches,
//! the sender between mails.

use crate::app::App;
use crate::clock;
use crate::domain::email;
use crate::domain::key_ring::{self, KeyRingError};
use crate::locks::Unpoisoned;
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
        let stopped = self.stopped.lock().unpoisoned();
        let (stopped, _) = self
            .wake
            .wait_timeout_while(stopped, period, |stopped| !*stopped)
            .unpoisoned();
        *stopped
    }

    fn is_set(&self) -> bool {
        *self.stopped.lock().unpoisoned()
    }
}

pub struct Background {
    stop: Arc<Stop>,
    threads: Vec<JoinHandle<()>>,
}

/// Starts the threads; if one can't be spawned, stops those already running.
pub fn start(app: Arc<App>) -> std::io::Result<Background> {
    let mut background = Background {
        stop: Arc::new(Stop::default()),
        threads: Vec::new(),
    };
    type Body = fn(&App, &Stop);
    let bodies = [
        ("keys", keys_and_token_use as Body),
        ("cleanup", cleanup),
        ("mail", send_mail),
    ];
    for (name, body) in bodies {
        let (app, stop) = (app.clone(), background.stop.clone());
        match std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(&app, &stop))
        {
            Ok(thread) => background.threads.push(thread),
            Err(e) => {
                background.stop();
                return Err(e);
            }
        }
    }
    Ok(background)
}

impl Background {
    /// Wakes the threads, lets them finish (a last flush), and waits.
    pub fn stop(self) {
        *self.stop.stopped.lock().unpoisoned() = true;
        self.stop.wake.notify_all();
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

fn keys_and_token_use(app: &App, stop: &Stop) {
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
            if let Err(e) = app.token_use.flush(&mut conn) {
                log::error!("recording token use: {e}");
            }
        }
        Err(e) => log::error!("recording token use: {e}"),
    }
}

fn refresh_keys(app: &App) -> Result<(), KeyRingError> {
    let mut conn = app.db.get()?;
    let interval = app.config.key_rotation_interval;
    // A new key is due once the newest has existed for a period; it is made
    // `publication_delay` before it signs, so verifiers already hold it.
    if interval > 0 {
        let due = clock::now().saturating_sub(interval);
        let delay = key_ring::publication_delay(app.config.jwks_max_age);
        if let Some(kid) = key_ring::rotate(&mut conn, delay, Some(due))? {
            log::info!("new signing key {kid}: published now, signs in {delay} s");
        }
    }
    let (signing, published) = key_ring::current(&conn, app.window)?;
    let keys = app.keys();
    let current: Vec<String> = keys.jwks().keys.into_iter().map(|k| k.kid).collect();
    if signing.as_ref() != Some(&keys.active().kid) || published != current {
        let ring = key_ring::load(&mut conn, app.window)?;
        log::info!(
            "signing keys reloaded: {} signs; published {}",
            ring.active().kid,
            published.join(", ")
        );
        app.replace_keys(ring);
    }
    Ok(())
}

fn cleanup(app: &App, stop: &Stop) {
    while !stop.wait(app.config.cleanup_interval) {
        let swept = match app.db.get() {
            Ok(mut conn) => {
                let keep = cleanup::Keep {
                    window: app.window,
                    audit_retention: app.config.audit_retention,
                };
                cleanup::sweep(&mut conn, clock::now(), keep, &|| stop.is_set())
            }
            Err(e) => {
                log::error!("cleanup: {e}");
                continue;
            }
        };
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
    let settings = app.config.mail();
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
                    mail::delivery::deliver(&settings, m)
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
