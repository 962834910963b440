//! The caller's profile: read it, and update its name fields and email.

use crate::app::App;
use crate::auth;
use crate::clock;
use crate::db::{self, users};
use crate::error::{ApiError, FieldErrors};
use crate::handlers::UserView;
use crate::http;
use crate::validate;
use rouille::{Request, Response};
use serde::Deserialize;

/// `GET /profile/`.
pub fn get_profile(app: &App, request: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, request)?;
    let user = users::find(&*app.conn()?, &caller.user_id)?.ok_or(ApiError::TokenNotValid)?;
    Ok(http::json_response(200, &UserView::from(user)))
}

#[derive(Deserialize)]
pub struct UpdateProfileRequest {
    name: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    current_password: Option<String>,
}

/// `PUT /profile/`, `PATCH /profile/`: both change only the fields given.
/// When `first_name` or `last_name` changes and `name` is not given, `name`
/// follows as "first last", as at sign-up. Changing the email needs the
/// current password.
pub fn update_profile(app: &App, request: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, request)?;
    let body: UpdateProfileRequest = http::json(request)?;
    let mut fields = FieldErrors::new();
    let mut check =
        |field, value: Option<String>, rule: fn(&str) -> Result<String, &'static str>| {
            value.and_then(|v| {
                rule(&v)
                    .map_err(|problem| fields.insert(field, problem))
                    .ok()
            })
        };
    let name = check("name", body.name, validate::full_name);
    let first_name = check("first_name", body.first_name, validate::name_part);
    let last_name = check("last_name", body.last_name, validate::name_part);
    let email = body.email.and_then(|e| {
        validate::email(&e)
            .map_err(|problem| fields.insert("email", problem))
            .ok()
    });
    if !fields.is_empty() {
        return Err(ApiError::Validation(fields));
    }

    let user = users::find(&*app.conn()?, &caller.user_id)?.ok_or(ApiError::TokenNotValid)?;
    let email = email.filter(|e| e.address != user.email);
    if email.is_some() {
        caller.session()?;
        let password = body.current_password.ok_or_else(|| {
            ApiError::field("current_password", "is required to change the email")
        })?;
        if !app.hasher.verify(&password, Some(&user.password_hash))?.ok {
            return Err(ApiError::InvalidCredentials);
        }
    }
    let renamed = first_name.is_some() || last_name.is_some();
    let mut names = users::Names {
        name: user.name.clone(),
        first_name: first_name.or(user.first_name.clone()),
        last_name: last_name.or(user.last_name.clone()),
    };
    match (name, &names.first_name, &names.last_name) {
        (Some(name), _, _) => names.name = name,
        (None, Some(first), Some(last)) if renamed => {
            names.name = validate::full_name(&format!("{first} {last}"))
                .map_err(|problem| ApiError::field("name", problem))?;
        }
        _ => {}
    }

    let now = clock::now();
    db::write(&mut *app.conn()?, |tx| {
        users::update_names(tx, &user.id, &names, now)?;
        if let Some(email) = &email {
            users::update_email(tx, &user.id, &email.address, &email.key, now)?
                .map_err(|_| ApiError::EmailExists)?;
        }
        Ok::<_, ApiError>(())
    })?;
    let user = users::find(&*app.conn()?, &caller.user_id)?.ok_or(ApiError::TokenNotValid)?;
    Ok(http::json_response(200, &UserView::from(user)))
}
