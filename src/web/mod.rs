//! The web layer: routing, the response edge, reading requests, who is
//! calling, and the handlers that speak the contract. Below it is the
//! domain; above it, the transport that feeds it requests.

pub mod auth;
pub mod handlers;
pub mod http;
pub mod multipart;
mod proptests;
pub mod router;
pub mod service;
