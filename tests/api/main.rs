//! The black-box test suite of latchkey: every test starts the real binary on an
//! ephemeral port with its own database and checks the HTTP contract
//! (`shared/API.md`) from the outside, over raw sockets.

mod harness;

mod cli;
mod connections;
mod errors;
mod jwt;
mod login;
mod logout;
mod profile;
mod refresh;
mod signup;
