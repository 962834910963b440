//! The shared test harness: `server` runs the real binary, `http` is a raw
//! HTTP/1.1 client, `domain` speaks the contract (sign up, log in,
//! `assert_error`) and `jwt` checks and mints tokens independently of the service.

pub mod domain;
pub mod http;
pub mod jwt;
pub mod server;

pub use domain::*;
pub use http::{Conn, Request, Response};
pub use jwt::*;
pub use server::{BIN, Server, poll_until};
