//! Pictures and forms for the profile-picture tests: real JPEG, PNG, GIF and
//! WebP files made here with the `image` crate's encoders (then given EXIF GPS
//! data or a huge declared canvas), and `multipart/form-data` bodies written by
//! a real client encoder (ureq's), as a browser or an HTTP library would send.

use std::io::{Cursor, Read};

use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};
use ureq::unversioned::multipart::{Form, Part};

use super::http::{Request, Response};
use super::server::Server;

/// The four formats an avatar may have, with their content types.
pub const FORMATS: [(ImageFormat, &str); 4] = [
    (ImageFormat::Jpeg, "image/jpeg"),
    (ImageFormat::Png, "image/png"),
    (ImageFormat::Gif, "image/gif"),
    (ImageFormat::WebP, "image/webp"),
];

/// A text the GPS block of [`jpeg_with_gps`] holds (as its map datum), to be
/// searched for in what the service serves.
pub const GPS_SECRET: &[u8] = b"48.8584N-2.2945E-secret-place";

/// A picture with gradients and texture, so encoders have real work.
pub fn picture(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        Rgba([
            (x * 255 / w) as u8,
            (y * 255 / h) as u8,
            ((x ^ y) & 0xFF) as u8,
            255,
        ])
    })
}

/// A `w`×`h` picture encoded by the `image` crate's own encoder for `format`.
pub fn encoded(format: ImageFormat, w: u32, h: u32) -> Vec<u8> {
    encode_pixels(DynamicImage::ImageRgba8(picture(w, h)), format)
}

/// A `w`×`h` picture of pseudo-random pixels: no encoder can make it small,
/// so a PNG of it has about `3 * w * h` bytes.
pub fn noise_png(w: u32, h: u32) -> Vec<u8> {
    let mut state = 0x2545_F491_u32;
    let image = RgbaImage::from_fn(w, h, |_, _| {
        // xorshift32: cheap, deterministic, incompressible enough.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [a, b, c, _] = state.to_le_bytes();
        Rgba([a, b, c, 255])
    });
    encode_pixels(DynamicImage::ImageRgba8(image), ImageFormat::Png)
}

fn encode_pixels(mut image: DynamicImage, format: ImageFormat) -> Vec<u8> {
    if format == ImageFormat::Jpeg {
        image = DynamicImage::ImageRgb8(image.into_rgb8());
    }
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, format)
        .expect("encode a test picture");
    out.into_inner()
}

/// Decodes what the service served; panics when it is not a picture.
pub fn decode(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).expect("the served bytes decode as a picture")
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The GPS latitude seconds of [`jpeg_with_gps`] as the RATIONAL it stores
/// (2417/100, i.e. 24.17''), big-endian.
pub fn gps_seconds_rational() -> Vec<u8> {
    [2417u32.to_be_bytes(), 100u32.to_be_bytes()].concat()
}

/// A big-endian TIFF block as EXIF holds it: IFD0 with a pointer to a GPS IFD
/// holding latitude "N 48° 51' 24.17''" and a map datum of [`GPS_SECRET`].
fn tiff_with_gps() -> Vec<u8> {
    let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]| {
        t.extend_from_slice(&tag.to_be_bytes());
        t.extend_from_slice(&kind.to_be_bytes());
        t.extend_from_slice(&count.to_be_bytes());
        t.extend_from_slice(&value);
    };
    let (gps_ifd, rationals, datum) = (26u32, 68u32, 92u32);
    let mut t = b"MM\0\x2A\0\0\0\x08".to_vec();
    t.extend_from_slice(&1u16.to_be_bytes());
    entry(&mut t, 0x8825, 4, 1, gps_ifd.to_be_bytes()); // GPSInfo IFD pointer
    t.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(t.len(), gps_ifd as usize);
    t.extend_from_slice(&3u16.to_be_bytes());
    entry(&mut t, 0x0001, 2, 2, *b"N\0\0\0"); // GPSLatitudeRef, ASCII
    entry(&mut t, 0x0002, 5, 3, rationals.to_be_bytes()); // GPSLatitude, RATIONAL×3
    let len = GPS_SECRET.len() as u32 + 1;
    entry(&mut t, 0x0012, 2, len, datum.to_be_bytes()); // GPSMapDatum, ASCII
    t.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(t.len(), rationals as usize);
    for (n, d) in [(48u32, 1u32), (51, 1), (2417, 100)] {
        t.extend_from_slice(&n.to_be_bytes());
        t.extend_from_slice(&d.to_be_bytes());
    }
    assert_eq!(t.len(), datum as usize);
    t.extend_from_slice(GPS_SECRET);
    t.push(0);
    t
}

/// A real JPEG with an EXIF APP1 segment holding a GPS position spliced in
/// right after its SOI marker, where a camera writes it.
pub fn jpeg_with_gps(w: u32, h: u32) -> Vec<u8> {
    let jpeg = encoded(ImageFormat::Jpeg, w, h);
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend_from_slice(&tiff_with_gps());
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&(exif.len() as u16 + 2).to_be_bytes());
    out.extend_from_slice(&exif);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A real (small) PNG whose IHDR declares `w`×`h`, CRC recomputed: a few
/// hundred bytes claiming an enormous canvas, a decompression bomb's header.
pub fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut out = encoded(ImageFormat::Png, 8, 8);
    assert_eq!(&out[12..16], b"IHDR", "IHDR is the first chunk");
    out[16..20].copy_from_slice(&w.to_be_bytes());
    out[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32fast::hash(&out[12..29]);
    out[29..33].copy_from_slice(&crc.to_be_bytes());
    out
}

/// A `multipart/form-data` form: text fields, then optionally an `image` file
/// part with a file name and a declared content type.
#[derive(Debug, Clone, Default)]
pub struct ProfileForm<'a> {
    pub fields: Vec<(&'a str, &'a str)>,
    pub image: Option<(&'a [u8], &'a str)>,
}

impl<'a> ProfileForm<'a> {
    pub fn new() -> Self {
        ProfileForm::default()
    }

    /// Adds a text field.
    pub fn text(mut self, name: &'a str, value: &'a str) -> Self {
        self.fields.push((name, value));
        self
    }

    /// Adds the `image` file part, declared as `content_type`.
    pub fn image(mut self, bytes: &'a [u8], content_type: &'a str) -> Self {
        self.image = Some((bytes, content_type));
        self
    }

    /// The Content-Type (with its boundary) and the body, as ureq's multipart
    /// encoder writes them.
    pub fn encode(&self) -> (String, Vec<u8>) {
        let mut form = Form::new();
        for (name, value) in &self.fields {
            form = form.text(name, value);
        }
        if let Some((bytes, content_type)) = self.image {
            let extension = content_type.rsplit('/').next().unwrap_or("bin");
            let part = Part::bytes(bytes)
                .file_name(&format!("me.{extension}"))
                .mime_str(content_type)
                .expect("a valid MIME type");
            form = form.part("image", part);
        }
        let content_type = format!("multipart/form-data; boundary={}", form.boundary());
        let mut body = Vec::new();
        form.read_to_end(&mut body).expect("encode the form");
        (content_type, body)
    }
}

impl Request {
    /// A `multipart/form-data` body from a real encoder.
    pub fn multipart(self, form: &ProfileForm<'_>) -> Request {
        let (content_type, body) = form.encode();
        self.body_with_type(&content_type, body)
    }
}

/// `PUT /profile/` with the form and a Bearer token.
pub fn upload(srv: &Server, token: &str, form: &ProfileForm<'_>) -> Response {
    srv.put("/profile/").bearer(token).multipart(form).send()
}

/// Uploads `bytes` as the picture; asserts 200 and returns the new `image_url`.
pub fn upload_picture(srv: &Server, token: &str, bytes: &[u8], content_type: &str) -> String {
    let resp = upload(srv, token, &ProfileForm::new().image(bytes, content_type));
    assert_eq!(resp.status, 200, "upload failed: {}", resp.text());
    resp.json()["image_url"]
        .as_str()
        .unwrap_or_else(|| panic!("no image_url after an upload: {}", resp.text()))
        .to_string()
}

/// The path of an `image_url` (absolute or not): `/media/avatars/{id}`.
pub fn avatar_path(image_url: &str) -> String {
    let at = image_url
        .find("/media/avatars/")
        .unwrap_or_else(|| panic!("image_url is not under /media/avatars/: {image_url}"));
    image_url[at..].to_string()
}
