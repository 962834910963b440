//! The shared test harness: `server` runs the real binary, `http` is a raw
//! HTTP/1.1 client, `domain` speaks the contract (sign up, log in,
//! `assert_error`) and `jwt` checks and mints tokens independently of the service.
//! `pictures` makes real images and multipart forms; `lifecycle` reaches the
//! database file, the admin subcommands, private tokens and `/metrics`;
//! `tokens` serves the private-token, session, revocation and key tests;
//! `resilience` the throttling, hostile-input, concurrency and crash tests;
//! `smtp` is a real SMTP server in the test process, `mailbox` reads the
//! `.eml` files of the default mail delivery.

pub mod domain;
pub mod http;
pub mod jwt;
pub mod lifecycle;
pub mod mailbox;
pub mod pictures;
pub mod resilience;
pub mod server;
pub mod smtp;
pub mod tokens;
pub mod totp;

pub use domain::*;
pub use http::{Conn, Request, Response};
pub use jwt::*;
pub use server::{BIN, Server, poll_until};
