//! `Blocking`: where slow, CPU-bound work (password hashing, picture decoding)
//! runs. The domain does not know the worker pool; whoever builds the service
//! hands it the pool's way of stepping aside, and everything else runs the
//! work in place.

use std::fmt;

/// Runs a piece of slow work. The service gives the pool's `step_aside`, so
/// a handler waiting on argon2 frees its worker slot meanwhile; commands and
/// tests use [`Blocking::INLINE`].
#[derive(Clone, Copy)]
pub struct Blocking(fn(&mut dyn FnMut()));

impl Blocking {
    /// Runs the work on the calling thread, holding whatever it holds.
    pub const INLINE: Blocking = Blocking(|work| work());

    /// `section` must run the work it is given exactly once, on any thread
    /// state it likes (and pass a panic on).
    pub const fn new(section: fn(&mut dyn FnMut())) -> Blocking {
        Blocking(section)
    }

    /// Runs `work` inside the section and returns its result.
    pub fn run<R>(&self, work: impl FnOnce() -> R) -> R {
        let mut work = Some(work);
        let mut result = None;
        (self.0)(&mut || {
            if let Some(work) = work.take() {
                result = Some(work());
            }
        });
        match (result, work) {
            (Some(result), _) => result,
            // A section that skipped its work: run it here rather than fail.
            (None, Some(work)) => work(),
            (None, None) => unreachable!("the work ran but left no result"),
        }
    }
}

impl fmt::Debug for Blocking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Blocking")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        static INSIDE: Cell<bool> = const { Cell::new(false) };
    }

    fn marking(work: &mut dyn FnMut()) {
        INSIDE.set(true);
        work();
        INSIDE.set(false);
    }

    #[test]
    fn runs_the_work_inside_the_section_once() {
        let blocking = Blocking::new(marking);
        assert!(blocking.run(|| INSIDE.get()));
        assert!(!INSIDE.get());
        assert!(!Blocking::INLINE.run(|| INSIDE.get()));
        assert_eq!(Blocking::new(|_| {}).run(|| 7), 7);
    }
}
