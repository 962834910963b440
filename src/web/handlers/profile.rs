//! The caller's account: read and update the profile (JSON, or
//! multipart/form-data with a picture), change the password, delete it all.

use crate::app::App;
use crate::clock;
use crate::db::{self, sessions, users};
use crate::domain::{email, validate};
use crate::error::{ApiError, FieldErrors};
use crate::web::auth::{self, Caller};
use crate::web::handlers::{UserView, checked, email as email_flows, images};
use crate::web::http;
use crate::web::multipart;
use rouille::{Request, Response};
use serde::Deserialize;

/// `GET /profile/`.
pub fn get_profile(app: &App, request: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, request)?;
    let user = current_user(app, &caller)?;
    Ok(http::json_response(200, &UserView::from(user)))
}

/// The current password, checked (and throttled) as at login under the
/// account's email key; a wrong one is 401 `invalid_credentials`.
fn confirm_password(
    app: &App,
    request: &Request,
    user: &users::User,
    password: &str,
) -> Result<(), ApiError> {
    let key = validate::email(&user.email).map_or_else(|_| user.email.to_lowercase(), |e| e.key);
    match auth::check_password(app, request, &key, password, Some(&user.password_hash))?.ok {
        true => Ok(()),
        false => Err(ApiError::InvalidCredentials),
    }
}

fn current_user(app: &App, caller: &Caller) -> Result<users::User, ApiError> {
    users::find(&*app.conn()?, &caller.user_id)?.ok_or(ApiError::TokenNotValid)
}

#[derive(Deserialize, Default)]
pub struct UpdateProfileRequest {
    name: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    current_password: Option<String>,
}

impl UpdateProfileRequest {
    /// The same fields from a multipart form; unknown parts are ignored.
    fn from_form(fields: Vec<(String, String)>) -> UpdateProfileRequest {
        let mut request = UpdateProfileRequest::default();
        for (name, value) in fields {
            let slot = match name.as_str() {
                "name" => &mut request.name,
                "first_name" => &mut request.first_name,
                "last_name" => &mut request.last_name,
                "email" => &mut request.email,
                "current_password" => &mut request.current_password,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        request
    }
}

/// The body of a profile update, JSON or multipart, and the picture if any.
fn read_update(
    app: &App,
    request: &Request,
) -> Result<(UpdateProfileRequest, Option<Vec<u8>>), ApiError> {
    let content_type = request.header("Content-Type").unwrap_or_default();
    if !multipart::is_multipart(content_type) {
        return Ok((http::json(request)?, None));
    }
    let body = http::body(request, multipart::body_limit(app.config.max_image_bytes))?;
    let form =
        multipart::parse(content_type, &body, app.config.max_image_bytes).map_err(|e| match e {
            multipart::FormError::NotMultipart => ApiError::UnsupportedMediaType,
            multipart::FormError::TooLarge => ApiError::PayloadTooLarge,
            multipart::FormError::Malformed => ApiError::MalformedForm,
        })?;
    Ok((UpdateProfileRequest::from_form(form.fields), form.image))
}

/// `PUT /profile/`, `PATCH /profile/`: both change only the fields given.
/// When `first_name` or `last_name` changes and `name` is not given, `name`
/// follows as "first last", as at sign-up. Changing the email needs the
/// current password and a login (not a private token).
pub fn update_profile(app: &App, request: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, request)?;
    let (body, image) = read_update(app, request)?;
    let mut fields = FieldErrors::new();
    let mut check = |field, value, rule| checked(&mut fields, field, value, rule);
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
    let image = image.map(|bytes| images::clean(app, &bytes)).transpose()?;

    let user = current_user(app, &caller)?;
    let email = email.filter(|e| e.address != user.email);
    if email.is_some() {
        caller.session()?;
        let password = body.current_password.ok_or_else(|| {
            ApiError::field("current_password", "is required to change the email")
        })?;
        confirm_password(app, request, &user, &password)?;
        // The change waits for its link, but an address already taken is
        // refused now (and again, under races, when the link is confirmed).
        if let Some(new) = &email
            && users::find_by_email_key(&*app.conn()?, &new.key)?.is_some()
        {
            return Err(ApiError::EmailExists);
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
    let details = email_flows::details(app, request, now);
    db::write(&mut *app.conn()?, |tx| {
        users::update_names(tx, &user.id, &names, now)?;
        if let Some(new) = &email {
            email::request_change(tx, &app.links(), &user, &new.address, &details, now)?;
        }
        if let Some(image) = &image {
            images::store(tx, &user.id, image, now)?;
        }
        Ok::<_, ApiError>(())
    })?;
    Ok(http::json_response(
        200,
        &UserView::from(current_user(app, &caller)?),
    ))
}

#[derive(Deserialize)]
pub struct ChangePasswordRequest {
    current_password: Option<String>,
    new_password: Option<String>,
}

/// `POST /password/`: a new password; every session of the user ends, so
/// their refresh tokens and access tokens are refused from now on.
pub fn change_password(app: &App, request: &Request) -> Result<Response, ApiError> {
    let (caller, _) = auth::session_caller(app, request)?;
    let body: ChangePasswordRequest = http::json(request)?;
    let mut fields = FieldErrors::new();
    if body.current_password.is_none() {
        fields.insert("current_password", "is required");
    }
    match body.new_password.as_deref().map(validate::new_password) {
        None => drop(fields.insert("new_password", "is required")),
        Some(Err(problem)) => drop(fields.insert("new_password", problem)),
        Some(Ok(())) => {}
    }
    let (Some(current), Some(new), true) =
        (body.current_password, body.new_password, fields.is_empty())
    else {
        return Err(ApiError::Validation(fields));
    };
    let user = current_user(app, &caller)?;
    confirm_password(app, request, &user, &current)?;
    let hash = app.hasher.hash(&new)?;
    let now = clock::now();
    let details = email_flows::details(app, request, now);
    db::write(&mut *app.conn()?, |tx| {
        users::update_password_hash(tx, &user.id, &hash)?;
        users::touch(tx, &user.id, now)?;
        sessions::delete_all_of_user(tx, &user.id)?;
        email::notice_password_changed(tx, &user, false, &details, now)
    })?;
    Ok(http::no_content())
}

#[derive(Deserialize)]
pub struct DeleteProfileRequest {
    password: Option<String>,
}

/// `DELETE /profile/`: the user, their sessions, tokens and picture are gone,
/// in one transaction; the email may sign up again.
pub fn delete_profile(app: &App, request: &Request) -> Result<Response, ApiError> {
    let (caller, _) = auth::session_caller(app, request)?;
    let password = http::json::<DeleteProfileRequest>(request)?
        .password
        .ok_or_else(|| ApiError::field("password", "is required"))?;
    let user = current_user(app, &caller)?;
    confirm_password(app, request, &user, &password)?;
    db::write(&mut *app.conn()?, |tx| users::delete(tx, &user.id))?;
    Ok(http::no_content())
}
