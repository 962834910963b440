//! The outbox sender: the only code that talks SMTP for the service. It
//! delivers due mails one at a time; a failure is retried with exponential
//! backoff (`delay`) up to `MAX_ATTEMPTS`, and a permanent refusal (5xx, a
//! recipient that is not an address) is given up at once. State lives in
//! the outbox rows, so a restart resumes where the last run stopped.

use super::Mail;
use super::delivery::Failure;
use crate::db::{self, Connection, outbox};

/// Tries per mail before it is marked failed. With `delay`, the last try
/// comes about five hours after the first: a relay's maintenance window.
pub const MAX_ATTEMPTS: i64 = 16;

/// Mails read per query.
const BATCH: i64 = 20;

/// Seconds to wait after the `attempts`-th failed try: 2, 4, 8 … at most an hour.
pub fn delay(attempts: i64) -> i64 {
    let doublings = (attempts - 1).clamp(0, 20) as u32;
    (2i64 << doublings).min(3600)
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub sent: usize,
    pub postponed: usize,
    pub failed: usize,
}

/// Delivers every mail due at `now()` with `deliver`, until none is due or
/// `stop()`. Each outcome is written at once, so a crash mid-pass repeats at
/// most the mail in flight.
pub fn pass(
    conn: &mut Connection,
    now: &dyn Fn() -> i64,
    stop: &dyn Fn() -> bool,
    deliver: &dyn Fn(&Mail) -> Result<String, Failure>,
) -> db::Result<Pass> {
    let mut done = Pass::default();
    loop {
        let due = outbox::due(conn, now(), BATCH)?;
        if due.is_empty() {
            return Ok(done);
        }
        for queued in due {
            if stop() {
                return Ok(done);
            }
            let id = queued.mail.id.as_str();
            let outcome = deliver(&queued.mail);
            let attempts = queued.attempts + 1;
            db::write(conn, |tx| match &outcome {
                Ok(answer) => {
                    log::info!("mail {id} delivered: {answer}");
                    done.sent += 1;
                    outbox::delete_sent(tx, id)
                }
                Err(f) if f.permanent || attempts >= MAX_ATTEMPTS => {
                    log::warn!("mail {id} failed after {attempts} tries: {}", f.reason);
                    done.failed += 1;
                    outbox::mark_failed(tx, id, now(), &f.reason)
                }
                Err(f) => {
                    let wait = delay(attempts);
                    log::info!(
                        "mail {id} not delivered (try {attempts}), retrying in {wait} s: {}",
                        f.reason
                    );
                    done.postponed += 1;
                    outbox::postpone(tx, id, now() + wait, &f.reason)
                }
            })?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_connection;
    use std::cell::Cell;

    fn queue(conn: &Connection, to: &str) {
        crate::mail::queue(
            conn,
            to,
            crate::mail::compose::test(&Default::default()),
            100,
        )
        .unwrap();
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!((1..=5).map(delay).collect::<Vec<_>>(), [2, 4, 8, 16, 32]);
        assert_eq!(delay(13), 3600);
        assert_eq!(delay(60), 3600);
    }

    #[test]
    fn a_sent_mail_leaves_the_outbox() {
        let mut conn = test_connection();
        queue(&conn, "ada@example.com");
        let sent = Cell::new(0);
        let done = pass(&mut conn, &|| 100, &|| false, &|m| {
            assert_eq!(m.to, "ada@example.com");
            sent.set(sent.get() + 1);
            Ok("250 OK".into())
        })
        .unwrap();
        assert_eq!((done.sent, sent.get()), (1, 1));
        assert_eq!(outbox::count_waiting(&conn).unwrap(), 0);
        assert!(outbox::all(&conn).unwrap().is_empty());
    }

    #[test]
    fn transient_failures_back_off_and_end_in_failure() {
        let mut conn = test_connection();
        queue(&conn, "ada@example.com");
        let down = |_: &Mail| {
            Err(Failure {
                permanent: false,
                reason: "connection refused".into(),
            })
        };
        let clock = Cell::new(100);
        let mut tries = 0;
        loop {
            let done = pass(&mut conn, &|| clock.get(), &|| false, &down).unwrap();
            tries += done.postponed + done.failed;
            if done.failed == 1 {
                break;
            }
            assert_eq!(done.postponed, 1);
            // Nothing is due again before its delay has passed.
            let again = pass(&mut conn, &|| clock.get(), &|| false, &down).unwrap();
            assert_eq!(again, Pass::default());
            clock.set(clock.get() + delay(tries as i64));
        }
        assert_eq!(tries as i64, MAX_ATTEMPTS);
        assert_eq!(
            outbox::all(&conn).unwrap(),
            [(
                "ada@example.com".to_string(),
                MAX_ATTEMPTS,
                Some(clock.get())
            )]
        );
    }

    #[test]
    fn a_permanent_refusal_is_not_retried() {
        let mut conn = test_connection();
        queue(&conn, "nobody@example.com");
        let calls = Cell::new(0);
        let refuse = |_: &Mail| {
            calls.set(calls.get() + 1);
            Err(Failure {
                permanent: true,
                reason: "550 no such user".into(),
            })
        };
        let done = pass(&mut conn, &|| 100, &|| false, &refuse).unwrap();
        assert_eq!(done.failed, 1);
        pass(&mut conn, &|| 100_000, &|| false, &refuse).unwrap();
        assert_eq!(calls.get(), 1);
    }
}
