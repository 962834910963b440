//! The caller's account: read and update the profile (JSON, or
//! multipart/form-data with a picture), change the password, delete it all.

use crate::app::App;
use crate::domain::accounts::{self, Authority, ProfileChange};
use crate::domain::validate::{self, Fields};
use crate::error::{ApiError, FieldErrors};
use crate::web::auth::{self, Caller, Credential};
use crate::web::handlers::{UserView, images};
use crate::web::http;
use crate::web::multipart;
use rouille::{Request, Response};
use serde::Deserialize;

/// `GET /profile/`.
pub fn get_profile(app: &App, request: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, request)?;
    let user = accounts::user(app, &caller.user_id)?;
    Ok(http::json_response(200, &UserView::from(user)))
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

impl UpdateProfileRequest {
    pub fn validate(self) -> Result<ProfileChange, FieldErrors> {
        let mut fields = Fields::default();
        let change = ProfileChange {
            name: fields.optional("name", self.name.as_deref(), validate::full_name),
            first_name: fields.optional(
                "first_name",
                self.first_name.as_deref(),
                validate::name_part,
            ),
            last_name: fields.optional("last_name", self.last_name.as_deref(), validate::name_part),
            email: fields.optional("email", self.email.as_deref(), validate::email),
            current_password: self.current_password,
        };
        fields.finish(Some(change))
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
    let form = multipart::parse(content_type, &body, app.config.max_image_bytes)?;
    Ok((UpdateProfileRequest::from_form(form.fields), form.image))
}

fn authority(caller: &Caller) -> Authority {
    match caller.credential {
        Credential::Session(_) => Authority::Login,
        Credential::PrivateToken(_) => Authority::PrivateToken,
    }
}

/// `PUT /profile/`, `PATCH /profile/`: both change only the fields given
/// (see `accounts::update_profile`).
pub fn update_profile(app: &App, request: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, request)?;
    let (body, image) = read_update(app, request)?;
    let change = body.validate()?;
    let picture = image.map(|bytes| images::clean(app, &bytes)).transpose()?;
    let client = auth::client(app, request);
    let user = accounts::update_profile(
        app,
        &client,
        &caller.user_id,
        authority(&caller),
        change,
        picture,
    )?;
    Ok(http::json_response(200, &UserView::from(user)))
}

#[derive(Deserialize)]
pub struct ChangePasswordRequest {
    current_password: Option<String>,
    new_password: Option<String>,
}

impl ChangePasswordRequest {
    /// `(current, new)`.
    pub fn validate(self) -> Result<(String, String), FieldErrors> {
        let mut fields = Fields::default();
        let current = fields.required(
            "current_password",
            self.current_password.as_deref(),
            validate::present,
        );
        let new = fields.required("new_password", self.new_password.as_deref(), |p| {
            validate::new_password(p).map(|()| p.to_owned())
        });
        fields.finish(current.zip(new))
    }
}

/// `POST /password/`: a new password; every session of the user ends.
pub fn change_password(app: &App, request: &Request) -> Result<Response, ApiError> {
    let (caller, session_id) = auth::session_caller(app, request)?;
    let (current, new) = http::json::<ChangePasswordRequest>(request)?.validate()?;
    let client = auth::client(app, request);
    let who = (caller.user_id.as_str(), session_id.as_str());
    accounts::change_password(app, &client, who, &current, &new)?;
    Ok(http::no_content())
}

#[derive(Deserialize)]
pub struct DeleteProfileRequest {
    password: Option<String>,
}

impl DeleteProfileRequest {
    pub fn validate(self) -> Result<String, FieldErrors> {
        let mut fields = Fields::default();
        let password = fields.required("password", self.password.as_deref(), validate::present);
        fields.finish(password)
    }
}

/// `DELETE /profile/`: the user, their sessions, tokens and picture are gone.
pub fn delete_profile(app: &App, request: &Request) -> Result<Response, ApiError> {
    let (caller, session_id) = auth::session_caller(app, request)?;
    let password = http::json::<DeleteProfileRequest>(request)?.validate()?;
    let client = auth::client(app, request);
    let who = (caller.user_id.as_str(), session_id.as_str());
    accounts::delete_account(app, &client, who, &password)?;
    Ok(http::no_content())
}
