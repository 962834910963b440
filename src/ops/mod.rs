//! Operations: running the service (bind, signals, background threads), the
//! operator's subcommands, the cleanup sweep, metrics and systemd readiness.

pub mod admin;
pub mod audit;
pub mod background;
pub mod cleanup;
pub mod error;
pub mod metrics;
pub mod notify;
pub mod server;
