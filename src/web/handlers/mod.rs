//! Request handlers, one module per part of the contract. Each reads top to
//! bottom: parse → validate → authorize → call `db::` → respond with a typed
//! view. No SQL here, and nothing of rouille below this layer.

pub mod images;
pub mod mfa;
pub mod ops;
pub mod private_tokens;
pub mod profile;
pub mod session;

use crate::clock;
use crate::db::users::User;
use crate::error::FieldErrors;
use serde::Serialize;

/// A field rule applied to an optional value: the cleaned value, or `None`
/// with the problem recorded in `fields`.
pub fn checked(
    fields: &mut FieldErrors,
    field: &'static str,
    value: Option<String>,
    rule: fn(&str) -> Result<String, &'static str>,
) -> Option<String> {
    value.and_then(|v| {
        rule(&v)
            .map_err(|problem| fields.insert(field, problem))
            .ok()
    })
}

/// USER in the contract. Never the password hash.
#[derive(Serialize)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub mfa_enabled: bool,
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
            name: u.name,
            first_name: u.first_name,
            last_name: u.last_name,
            image_url: u.image_id.map(|id| format!("/media/avatars/{id}")),
            created_at: clock::rfc3339(u.created_at),
            updated_at: clock::rfc3339(u.updated_at),
        }
    }
}
