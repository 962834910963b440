//! The domain: the rules of accounts and tokens, independent of HTTP and of
//! SQL — the account operations that handlers and pages call (`accounts`),
//! field validation, password hashing, throttling, picture cleaning, token
//! claims and signing keys, and the secrets latchkey makes.

pub mod accounts;
pub mod audit;
pub mod blocking;
pub mod email;
pub mod ids;
pub mod images;
pub mod ip_net;
pub mod jwt_provider;
pub mod key_ring;
pub mod keys;
pub mod mfa;
pub mod password;
pub mod throttle;
pub mod token_cache;
pub mod token_use;
pub mod tokens;
pub mod validate;
