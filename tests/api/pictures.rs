//! Profile pictures: `multipart/form-data` updates with text fields and an
//! `image` part; JPEG, PNG, GIF and WebP judged by content; the byte limit and
//! the pixel limit (a decompression bomb); metadata stripped; the avatar served
//! with its type, `nosniff`, an `ETag` and an immutable cache lifetime; a new
//! upload retiring the old URL; `DELETE /profile/image`.

use image::{GenericImageView, ImageFormat};

use crate::harness::pictures::*;
use crate::harness::tokens::issue_private_token;
use crate::harness::*;

/// Fetches an avatar; asserts 200 and the headers every avatar carries.
fn fetch_avatar(srv: &Server, image_url: &str, content_type: &str) -> Response {
    let resp = srv.get(&avatar_path(image_url)).send();
    assert_eq!(resp.status, 200, "GET {image_url}: {}", resp.text());
    assert_eq!(
        resp.header("Content-Type"),
        Some(content_type),
        "{image_url}"
    );
    assert_eq!(
        resp.header("X-Content-Type-Options")
            .map(str::to_ascii_lowercase),
        Some("nosniff".to_string())
    );
    let etag = resp.header("ETag").unwrap_or_default();
    assert!(
        etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
        "ETag {etag:?}"
    );
    assert_long_immutable(&resp);
    resp
}

/// `Cache-Control` with `immutable` and a `max-age` of at least 30 days.
fn assert_long_immutable(resp: &Response) {
    let cache = resp
        .header("Cache-Control")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let max_age: u64 = cache
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        cache.contains("immutable") && max_age >= 30 * 86_400,
        "Cache-Control {cache:?}"
    );
}

#[test]
fn each_format_is_stored_and_served_with_its_type() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "formats");
    for (i, (format, content_type)) in FORMATS.into_iter().enumerate() {
        let (w, h) = (40 + i as u32, 30);
        let bytes = encoded(format, w, h);
        // Text fields and the picture in one request, by PUT and by PATCH.
        let method = if i % 2 == 0 { "PUT" } else { "PATCH" };
        let name = format!("Ada Format {}", ["Jay", "Pee", "Gee", "Web"][i]);
        let form = ProfileForm::new()
            .text("name", &name)
            .text("first_name", "Ada")
            .image(&bytes, content_type);
        let resp = srv
            .request(method, "/profile/")
            .bearer(&tokens.access)
            .multipart(&form)
            .send();
        assert_eq!(resp.status, 200, "{method} {format:?}: {}", resp.text());
        let user = resp.json();
        assert_user(&user);
        assert_eq!(user["name"], name.as_str());
        assert_eq!(user["first_name"], "Ada");
        let image_url = user["image_url"].as_str().expect("image_url").to_string();
        let id = avatar_path(&image_url)["/media/avatars/".len()..].to_string();
        assert!(id.len() >= 16, "the avatar id is not unguessable: {id}");
        assert_eq!(get_profile(&srv, &tokens.access).json(), user);

        let resp = fetch_avatar(&srv, &image_url, content_type);
        assert_eq!(image::guess_format(&resp.body).unwrap(), format);
        assert_eq!(decode(&resp.body).dimensions(), (w, h), "{format:?}");
    }
}

#[test]
fn if_none_match_gets_304() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "etag");
    let image_url = upload_picture(
        &srv,
        &tokens.access,
        &encoded(ImageFormat::Png, 20, 20),
        "image/png",
    );
    let resp = fetch_avatar(&srv, &image_url, "image/png");
    let etag = resp.header("ETag").unwrap().to_string();
    let path = avatar_path(&image_url);
    for value in [etag.clone(), format!("\"other\", {etag}")] {
        let resp = srv.get(&path).header("If-None-Match", &value).send();
        assert_eq!(resp.status, 304, "If-None-Match: {value}");
        assert!(resp.body.is_empty());
        assert_eq!(resp.header("ETag"), Some(etag.as_str()));
        assert_long_immutable(&resp);
    }
    let resp = srv.get(&path).header("If-None-Match", "\"other\"").send();
    assert_eq!(resp.status, 200);
    assert!(!resp.body.is_empty());
}

#[test]
fn the_format_is_judged_by_content_not_by_the_declared_type() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "sniff");
    let text = b"This is a text file, whatever its Content-Type says.\n".repeat(20);
    let html = b"<html><script>alert(1)</script></html>".to_vec();
    for (bytes, declared) in [(&text, "image/png"), (&html, "image/gif")] {
        let form = ProfileForm::new()
            .text("name", "Ada Byron")
            .image(bytes, declared);
        let resp = upload(&srv, &tokens.access, &form);
        assert_error(&resp, 415, "unsupported_media_type");
    }
    assert_eq!(
        get_profile(&srv, &tokens.access).json(),
        account.user,
        "a refused upload changes nothing, not even the name sent with it"
    );

    // A real PNG declared as a JPEG is stored and served as what it is.
    let png = encoded(ImageFormat::Png, 12, 10);
    let image_url = upload_picture(&srv, &tokens.access, &png, "image/jpeg");
    let resp = fetch_avatar(&srv, &image_url, "image/png");
    assert_eq!(image::guess_format(&resp.body).unwrap(), ImageFormat::Png);
    // A truncated picture is not a picture.
    let gif = encoded(ImageFormat::Gif, 30, 30);
    let resp = upload(
        &srv,
        &tokens.access,
        &ProfileForm::new().image(&gif[..gif.len() / 2], "image/gif"),
    );
    assert_error(&resp, 415, "unsupported_media_type");
}

#[test]
fn an_image_over_max_image_bytes_is_413() {
    let srv = Server::with_args(&["--max-image-bytes", "20000"]);
    let (_, tokens) = new_session(&srv, "big");
    let small = noise_png(40, 40);
    let big = noise_png(100, 100);
    assert!(small.len() < 20_000 && big.len() > 20_000);
    let resp = upload(
        &srv,
        &tokens.access,
        &ProfileForm::new().image(&big, "image/png"),
    );
    assert_error(&resp, 413, "payload_too_large");
    assert!(get_profile(&srv, &tokens.access).json()["image_url"].is_null());
    // Far over the limit: refused however the server reads the body.
    let huge = noise_png(400, 400);
    let resp = upload(
        &srv,
        &tokens.access,
        &ProfileForm::new().image(&huge, "image/png"),
    );
    assert_error(&resp, 413, "payload_too_large");
    let image_url = upload_picture(&srv, &tokens.access, &small, "image/png");
    fetch_avatar(&srv, &image_url, "image/png");
}

#[test]
fn a_small_file_declaring_a_huge_canvas_is_refused() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "bomb");
    // 100,000 × 100,000 pixels would be 40 GB decoded; 5,000 × 5,000 is just
    // past the default limit of 16,777,216 pixels.
    for (w, h) in [(100_000, 100_000), (5_000, 5_000), (16_777_217, 1)] {
        let bomb = png_declaring(w, h);
        assert!(bomb.len() < 1_000);
        let resp = upload(
            &srv,
            &tokens.access,
            &ProfileForm::new().image(&bomb, "image/png"),
        );
        assert_error(&resp, 415, "unsupported_media_type");
    }
    assert!(get_profile(&srv, &tokens.access).json()["image_url"].is_null());
    assert_eq!(srv.get("/healthz").send().status, 200);

    // The pixel limit is a flag.
    let srv = Server::with_args(&["--max-image-pixels", "1000"]);
    let (_, tokens) = new_session(&srv, "pixels");
    let resp = upload(
        &srv,
        &tokens.access,
        &ProfileForm::new().image(&encoded(ImageFormat::Png, 40, 30), "image/png"),
    );
    assert_error(&resp, 415, "unsupported_media_type");
    upload_picture(
        &srv,
        &tokens.access,
        &encoded(ImageFormat::Png, 30, 30),
        "image/png",
    );
}

#[test]
fn exif_gps_data_is_gone_after_upload() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "gps");
    let dirty = jpeg_with_gps(64, 48);
    assert!(contains(&dirty, b"Exif\0\0") && contains(&dirty, GPS_SECRET));
    assert!(contains(&dirty, &gps_seconds_rational()));
    decode(&dirty);

    let image_url = upload_picture(&srv, &tokens.access, &dirty, "image/jpeg");
    let served = fetch_avatar(&srv, &image_url, "image/jpeg").body;
    assert!(!contains(&served, b"Exif"), "the EXIF block survived");
    assert!(!contains(&served, GPS_SECRET), "the GPS map datum survived");
    assert!(
        !contains(&served, &gps_seconds_rational()),
        "the GPS latitude survived"
    );
    assert_eq!(decode(&served).dimensions(), (64, 48));
}

#[test]
fn a_new_upload_gets_a_new_id_and_the_old_url_is_gone() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "replace");
    let first = upload_picture(
        &srv,
        &tokens.access,
        &encoded(ImageFormat::Png, 20, 20),
        "image/png",
    );
    fetch_avatar(&srv, &first, "image/png");
    // The same bytes again still get a new URL: the id is not derived from them.
    let second = upload_picture(
        &srv,
        &tokens.access,
        &encoded(ImageFormat::Png, 20, 20),
        "image/png",
    );
    assert_ne!(first, second);
    let third = upload_picture(
        &srv,
        &tokens.access,
        &encoded(ImageFormat::WebP, 24, 24),
        "image/webp",
    );
    assert_ne!(second, third);
    for old in [&first, &second] {
        let resp = srv.get(&avatar_path(old)).send();
        assert_error(&resp, 404, "not_found");
    }
    fetch_avatar(&srv, &third, "image/webp");
    assert_eq!(
        get_profile(&srv, &tokens.access).json()["image_url"],
        third.as_str()
    );
    // A JSON update without a picture keeps it.
    let resp = srv
        .patch("/profile/")
        .bearer(&tokens.access)
        .json(&serde_json::json!({"name": "Ada Byron"}))
        .send();
    assert_eq!(resp.json()["image_url"], third.as_str());
    // An unknown id is a plain 404.
    let resp = srv
        .get("/media/avatars/00000000-0000-4000-8000-000000000000")
        .send();
    assert_error(&resp, 404, "not_found");
}

#[test]
fn delete_profile_image_removes_it() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "unpicture");
    let resp = srv.request("DELETE", "/profile/image").send();
    assert_error(&resp, 401, "not_authenticated");
    let image_url = upload_picture(
        &srv,
        &tokens.access,
        &encoded(ImageFormat::Gif, 16, 16),
        "image/gif",
    );
    let resp = srv
        .request("DELETE", "/profile/image")
        .bearer(&tokens.access)
        .send();
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert!(resp.body.is_empty());
    assert!(get_profile(&srv, &tokens.access).json()["image_url"].is_null());
    assert_error(&srv.get(&avatar_path(&image_url)).send(), 404, "not_found");
    // Without a picture it is still 204 (the end state is what was asked).
    let resp = srv
        .request("DELETE", "/profile/image")
        .bearer(&tokens.access)
        .send();
    assert_eq!(resp.status, 204, "{}", resp.text());
}

#[test]
fn a_private_token_may_change_the_picture() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "ptpicture");
    let private = issue_private_token(&srv, &tokens.access, "avatar bot", 86_400);
    let image_url = upload_picture(
        &srv,
        &private.token,
        &encoded(ImageFormat::Jpeg, 32, 32),
        "image/jpeg",
    );
    fetch_avatar(&srv, &image_url, "image/jpeg");
    let resp = srv
        .request("DELETE", "/profile/image")
        .bearer(&private.token)
        .send();
    assert_eq!(resp.status, 204, "{}", resp.text());
}

#[test]
fn a_malformed_form_is_refused() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "badform");
    let (content_type, body) = ProfileForm::new().text("name", "Ada Byron").encode();
    // Cut before the close delimiter.
    let resp = srv
        .put("/profile/")
        .bearer(&tokens.access)
        .body_with_type(&content_type, &body[..body.len() - 10])
        .send();
    assert_error(&resp, 400, "invalid_json");
    // No boundary parameter.
    let resp = srv
        .put("/profile/")
        .bearer(&tokens.access)
        .body_with_type("multipart/form-data", body.clone())
        .send();
    assert_error(&resp, 400, "invalid_json");
    // The text fields are validated like JSON ones, and a refused form
    // stores nothing of what it carried, not even a valid picture.
    let picture = encoded(ImageFormat::Png, 10, 10);
    let form = ProfileForm::new()
        .text("name", "X")
        .text("last_name", "1234")
        .image(&picture, "image/png");
    let resp = upload(&srv, &tokens.access, &form);
    assert_validation_error(&resp, &["name", "last_name"]);
    assert!(get_profile(&srv, &tokens.access).json()["image_url"].is_null());
}
