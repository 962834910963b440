//! The black-box test suite of latchkey: every test starts the real binary on an
//! ephemeral port with its own database and checks the HTTP contract
//! (`shared/API.md`) from the outside, over raw sockets.

mod harness;

mod account;
mod audit;
mod body_limits;
mod cli;
mod concurrency;
mod connections;
mod crash;
mod email_flows;
mod errors;
mod forwarded_for;
mod hostile_tokens;
mod jwt;
mod keys;
mod limits;
mod login;
mod logout;
mod mail;
mod mfa;
mod operations;
mod pictures;
mod private_tokens;
mod profile;
mod refresh;
mod rotation;
mod sessions;
mod signup;
mod strict_http;
mod throttling;
