//! The pages a mailed link opens: `/account/verify-email`,
//! `/account/reset-password` and `/account/confirm-email`. A GET only shows
//! a form (mail scanners prefetch links, so opening one must not spend it);
//! the form's POST spends the token through the same `domain::email`
//! functions as the JSON routes. Minimal HTML: no script, no style, so the
//! strict CSP below needs no exception. TODO(#15): the full web pages.

use crate::app::App;
use crate::clock;
use crate::db::{self, email_tokens::Purpose};
use crate::domain::{email, validate};
use crate::error::ApiError;
use crate::web::handlers::email::{details, reset_with};
use crate::web::http;
use askama::Template;
use rouille::{Request, Response};

/// API.md "Web pages": the headers every page sends.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[derive(Template)]
#[template(path = "pages/link.html")]
struct LinkPage<'a> {
    title: &'a str,
    message: Option<&'a str>,
    /// The form is shown only while there is a token to send.
    token: Option<&'a str>,
    action: &'a str,
    button: &'a str,
    password: bool,
    problem: Option<&'a str>,
}

struct Texts {
    title: &'static str,
    intro: &'static str,
    button: &'static str,
    done: &'static str,
}

fn texts(purpose: Purpose) -> Texts {
    match purpose {
        Purpose::Verify => Texts {
            title: "Confirm your email address",
            intro: "Press the button to confirm that this address is yours.",
            button: "Confirm my address",
            done: "Your email address is confirmed. You can close this page.",
        },
        Purpose::Reset => Texts {
            title: "Choose a new password",
            intro: "Choose a new password of at least 8 characters. Every session of the account ends.",
            button: "Set the new password",
            done: "Your password is changed and every session has ended. Log in with the new password.",
        },
        Purpose::Change => Texts {
            title: "Confirm your new email address",
            intro: "Press the button to make this address your account's address.",
            button: "Confirm the new address",
            done: "Your account's email address is changed.",
        },
    }
}

fn html(status: u16, page: &LinkPage<'_>) -> Result<Response, ApiError> {
    let body = page.render().map_err(ApiError::internal)?;
    Ok(Response::from_data("text/html; charset=utf-8", body)
        .with_status_code(status)
        .with_unique_header("Content-Security-Policy", CSP)
        .with_unique_header("X-Frame-Options", "DENY")
        .with_unique_header("Referrer-Policy", "no-referrer")
        .with_unique_header("Cache-Control", "no-store"))
}

/// `GET /account/verify-email`, `/account/reset-password`,
/// `/account/confirm-email` `?token=…`: the form, nothing spent.
pub fn show(_app: &App, request: &Request, purpose: Purpose) -> Result<Response, ApiError> {
    let t = texts(purpose);
    let token = request.get_param("token").filter(|t| !t.is_empty());
    let message = match token {
        Some(_) => t.intro,
        None => "This link is incomplete: open the whole link from the mail.",
    };
    html(
        if token.is_some() { 200 } else { 400 },
        &LinkPage {
            title: t.title,
            message: Some(message),
            token: token.as_deref(),
            action: email::page(purpose),
            button: t.button,
            password: purpose == Purpose::Reset,
            problem: None,
        },
    )
}

/// The form's POST: spends the token and shows the outcome.
pub fn submit(app: &App, request: &Request, purpose: Purpose) -> Result<Response, ApiError> {
    if !same_origin(app, request) {
        return Err(ApiError::PermissionDenied);
    }
    let form = read_form(request)?;
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let token = field("token").unwrap_or_default();
    let t = texts(purpose);
    let page = |message, token, problem| LinkPage {
        title: t.title,
        message: Some(message),
        token,
        action: email::page(purpose),
        button: t.button,
        password: purpose == Purpose::Reset,
        problem,
    };
    let now = clock::now();
    let outcome = match purpose {
        Purpose::Verify => db::write(&mut *app.conn()?, |tx| email::verify(tx, token, now)),
        Purpose::Change => {
            let details = details(app, request, now);
            db::write(&mut *app.conn()?, |tx| {
                email::confirm_change(tx, token, &details, now)
            })
        }
        Purpose::Reset => {
            let password = field("new_password").unwrap_or_default();
            if let Err(problem) = validate::new_password(password) {
                return html(400, &page(t.intro, Some(token), Some(problem)));
            }
            reset_with(app, request, token, password)
        }
    };
    match outcome {
        Ok(()) => html(200, &page(t.done, None, None)),
        Err(ApiError::InvalidEmailToken) => html(
            400,
            &page(
                "This link is unknown, already used, replaced by a newer one, or expired.",
                None,
                None,
            ),
        ),
        Err(ApiError::EmailExists) => html(
            409,
            &page(
                "Another account uses this address now; the change was not made.",
                None,
                None,
            ),
        ),
        Err(other) => Err(other),
    }
}

/// A form POST must come from latchkey's own pages: `Sec-Fetch-Site`, or
/// else `Origin` against `--public-url` (API.md "Web pages").
fn same_origin(app: &App, request: &Request) -> bool {
    if let Some(site) = request.header("Sec-Fetch-Site") {
        return site == "same-origin";
    }
    let own = url::Url::parse(&app.links().public_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    request.header("Origin").is_some_and(|o| o == own)
}

fn read_form(request: &Request) -> Result<Vec<(String, String)>, ApiError> {
    let content_type = request.header("Content-Type").unwrap_or_default();
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = http::body(request, http::JSON_LIMIT)?;
    Ok(form_urlencoded::parse(&body).into_owned().collect())
}
