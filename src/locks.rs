//! Taking a lock whatever happened to its last holder.
//!
//! A panic while a lock is held (a handler's panic is caught and answered
//! with a 500) poisons it. Our critical sections are short and leave the data
//! consistent at every step, so the data is still good: carrying on is right,
//! while propagating the poison would turn one failed request into a dead
//! service.

use std::sync::{LockResult, PoisonError};

/// `lock()`, `read()`, `write()` and `Condvar` waits, ignoring poison.
pub trait Unpoisoned<G> {
    fn unpoisoned(self) -> G;
}

impl<G> Unpoisoned<G> for LockResult<G> {
    fn unpoisoned(self) -> G {
        self.unwrap_or_else(PoisonError::into_inner)
    }
}
