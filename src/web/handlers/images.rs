//! Profile pictures: cleaning an upload (`accounts::update_profile` stores
//! it), serving it, removing it.

use crate::app::App;
use crate::clock;
use crate::db::{self, images};
use crate::domain::images::CleanImage;
use crate::error::ApiError;
use crate::locks::Unpoisoned;
use crate::web::auth;
use crate::web::http;
use rouille::{Request, Response};

/// Decodes and re-encodes an upload without its metadata. Decoding a
/// picture at the pixel limit takes up to ~150 MiB and most of a second, so
/// it runs one at a time, off the worker slots (like password hashing).
pub fn clean(app: &App, bytes: &[u8]) -> Result<CleanImage, ApiError> {
    app.blocking
        .run(|| {
            let _one_at_a_time = app.image_lock.lock().unpoisoned();
            crate::domain::images::clean(
                bytes,
                app.config.max_image_bytes,
                app.config.max_image_pixels,
            )
        })
        .map_err(ApiError::from)
}

/// `GET /media/avatars/{id}`: public, immutable (a new upload gets a new id).
pub fn get_avatar(app: &App, request: &Request, id: &str) -> Result<Response, ApiError> {
    let image = images::find(&*app.conn()?, id)?.ok_or(ApiError::NotFound)?;
    let response = if request
        .header("If-None-Match")
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == image.etag))
    {
        Response::empty_204().with_status_code(304)
    } else {
        Response::from_data(image.content_type, image.bytes)
    };
    Ok(response
        .with_unique_header("ETag", image.etag)
        .with_unique_header("Cache-Control", "public, max-age=31536000, immutable"))
}

/// `DELETE /profile/image`: `image_url` becomes null.
pub fn delete_profile_image(app: &App, request: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, request)?;
    db::write(&mut *app.conn()?, |tx| {
        images::delete_of_user(tx, &caller.user_id)?;
        crate::db::users::touch(tx, &caller.user_id, clock::now())
    })?;
    Ok(http::no_content())
}
