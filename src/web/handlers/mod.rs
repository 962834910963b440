//! Request handlers, one module per part of the contract. Each reads top to
//! bottom: parse → validate (each `XxxRequest::validate` gives the checked
//! value the domain takes) → authorize → call `domain::accounts` or `db::` →
//! respond with a typed view. No SQL here, and nothing of rouille below this
//! layer.

pub mod audit;
pub mod email;
pub mod images;
pub mod link_pages;
pub mod mfa;
pub mod ops;
pub mod private_tokens;
pub mod profile;
pub mod session;

use crate::clock;
use crate::db::users::User;
use serde::Serialize;

/// USER in the contract. Never the password hash.
#[derive(Serialize)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub mfa_enabled: bool,
    pub email_verified: bool,
    pub pending_email: Option<String>,
    pub name: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub image_url: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<User> for UserView {
    fn from(u: User) -> UserView {
        UserView {
            id: u.id,
            email: u.email,
            mfa_enabled: u.mfa_enabled,
            email_verified: u.email_verified,
            pending_email: u.pending_email,
            name: u.name,
            first_name: u.first_name,
            last_name: u.last_name,
            image_url: u.image_id.map(|id| format!("/media/avatars/{id}")),
            created_at: clock::rfc3339(u.created_at),
            updated_at: clock::rfc3339(u.updated_at),
        }
    }
}
