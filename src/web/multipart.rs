//! `multipart/form-data` bodies (RFC 7578) for the profile update: its text
//! fields and one `image` file part, parsed from a body already in memory.
//!
//! Hand-written on purpose. The Rust multipart parsers are async-only
//! (multer, form-data, multipart-rs), unmaintained (multipart 0.18, which
//! rouille bundles, is RUSTSEC-2023-0050; its fork multipart-2021 keeps the
//! same dead dependencies; multiparty had one release, in 2021), tied to hyper
//! 0.10 (formdata, mime_multipart), or months old with one author's own
//! dependency stack (form-net). Our input is small and whole: the caller has
//! read at most [`body_limit`] bytes. Over a slice the format is little more
//! than boundary splitting (RFC 2046 §5.1.1), done with `memchr`, with each
//! part's header block read by `httparse`, which latchkey already uses.
//!
//! Every count and size is bounded: at most [`MAX_PARTS`] parts of at most
//! [`MAX_PART_HEADERS`] headers, text fields of at most [`MAX_FIELD_BYTES`],
//! the image at most `max_image_bytes`.

use memchr::memmem;
use std::fmt;

/// The most parts a form may have; the profile has six fields.
pub const MAX_PARTS: usize = 16;

/// The longest text field, in bytes: far above any valid name or email.
pub const MAX_FIELD_BYTES: usize = 4 * 1024;

/// The most headers one part may carry (Content-Disposition, Content-Type,
/// and room for what clients add).
pub const MAX_PART_HEADERS: usize = 8;

/// Room per part for its delimiter and headers, for [`body_limit`].
const PART_OVERHEAD: usize = 1024;

/// RFC 2046 §5.1.1: a boundary has 1 to 70 characters.
const MAX_BOUNDARY: usize = 70;

/// The form's text fields, in order, and the image part's bytes.
#[derive(Default, PartialEq, Eq)]
pub struct Form {
    /// Every part not named `image`, as (name, UTF-8 value).
    pub fields: Vec<(String, String)>,
    /// The part named `image`; `None` if absent or empty (a browser sends an
    /// empty file part when no file was chosen).
    pub image: Option<Vec<u8>>,
}

// A field may be `current_password`: Debug shows names and sizes only.
impl fmt::Debug for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.fields.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Form")
            .field("fields", &names)
            .field("image", &self.image.as_ref().map(Vec::len))
            .finish()
    }
}

/// Why a body is not an acceptable form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormError {
    /// The Content-Type is not `multipart/form-data` (415).
    NotMultipart,
    /// Too many parts, a text field over [`MAX_FIELD_BYTES`], or an image
    /// over `max_image_bytes` (413).
    TooLarge,
    /// Declared multipart but not well formed: no usable boundary, a part
    /// without a name, a truncated body, text that is not UTF-8, or two
    /// image parts (400).
    Malformed,
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FormError::NotMultipart => "not multipart/form-data",
            FormError::TooLarge => "form part too large",
            FormError::Malformed => "malformed multipart/form-data",
        })
    }
}

impl std::error::Error for FormError {}

/// The body size to read before [`parse`]: the image and every other part at
/// its largest. A body past it cannot be a form we accept.
pub fn body_limit(max_image_bytes: usize) -> usize {
    max_image_bytes.saturating_add(MAX_PARTS * (MAX_FIELD_BYTES + PART_OVERHEAD))
}

/// Whether a Content-Type names `multipart/form-data`, for choosing between
/// the JSON and the multipart reading of a body.
pub fn is_multipart(content_type: &str) -> bool {
    crate::web::http::is_media_type(content_type, "multipart/form-data")
}

/// Parses a `multipart/form-data` body; `content_type` is the request's
/// Content-Type header, boundary included. The caller has already refused a
/// body over [`body_limit`].
pub fn parse(content_type: &str, body: &[u8], max_image_bytes: usize) -> Result<Form, FormError> {
    let boundary = boundary(content_type)?;
    let mut form = Form::default();
    let mut seen_image = false;
    for raw in split(body, boundary.as_bytes())? {
        let (name, content) = part(raw)?;
        if name == "image" {
            // Two images leave it ambiguous which one the user meant.
            if seen_image {
                return Err(FormError::Malformed);
            }
            seen_image = true;
            if content.len() > max_image_bytes {
                return Err(FormError::TooLarge);
            }
            form.image = (!content.is_empty()).then(|| content.to_vec());
        } else {
            if content.len() > MAX_FIELD_BYTES {
                return Err(FormError::TooLarge);
            }
            let value = std::str::from_utf8(content).map_err(|_| FormError::Malformed)?;
            form.fields.push((name, value.to_owned()));
        }
    }
    Ok(form)
}

/// The `boundary` parameter of a `multipart/form-data` Content-Type.
fn boundary(content_type: &str) -> Result<&str, FormError> {
    if !is_multipart(content_type) {
        return Err(FormError::NotMultipart);
    }
    // Boundary characters (RFC 2046 §5.1.1 `bchars`) exclude ';' and '"', so
    // splitting on ';' cannot cut a valid boundary in two.
    let mut found = None;
    for param in content_type.split(';').skip(1) {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        if !key.trim().eq_ignore_ascii_case("boundary") {
            continue;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        if found.replace(value).is_some() {
            return Err(FormError::Malformed);
        }
    }
    let boundary = found.ok_or(FormError::Malformed)?;
    let valid = (1..=MAX_BOUNDARY).contains(&boundary.len())
        && !boundary.ends_with(' ')
        && boundary.bytes().all(is_bchar);
    if valid {
        Ok(boundary)
    } else {
        Err(FormError::Malformed)
    }
}

/// RFC 2046 §5.1.1 `bchars`.
fn is_bchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b)
}

/// The raw parts (headers and content) between the delimiters. The preamble
/// before the first delimiter and the epilogue after the last are ignored, as
/// RFC 2046 §5.1.1 requires; a body without its close delimiter is truncated.
fn split<'a>(body: &'a [u8], boundary: &[u8]) -> Result<Vec<&'a [u8]>, FormError> {
    // A delimiter is CRLF "--" boundary; the CRLF belongs to it, not to the
    // content before it. Only the very first may lack the CRLF.
    let delimiter = [b"\r\n--".as_slice(), boundary].concat();
    let finder = memmem::Finder::new(&delimiter);
    let mut pos = if body.starts_with(&delimiter[2..]) {
        delimiter.len() - 2
    } else {
        finder.find(body).ok_or(FormError::Malformed)? + delimiter.len()
    };
    let mut parts = Vec::new();
    loop {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding (linear white space) may follow a delimiter.
        let padding = rest
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        if !rest[padding..].starts_with(b"\r\n") {
            return Err(FormError::Malformed);
        }
        let start = pos + padding + 2;
        let len = finder.find(&body[start..]).ok_or(FormError::Malformed)?;
        if parts.len() == MAX_PARTS {
            return Err(FormError::TooLarge);
        }
        parts.push(&body[start..start + len]);
        pos = start + len + delimiter.len();
    }
}

/// A part's field name (from Content-Disposition) and its content.
fn part(raw: &[u8]) -> Result<(String, &[u8]), FormError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_PART_HEADERS];
    let (len, headers) = match httparse::parse_headers(raw, &mut headers) {
        Ok(httparse::Status::Complete(done)) => done,
        _ => return Err(FormError::Malformed),
    };
    let mut dispositions = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("Content-Disposition"));
    let (Some(disposition), None) = (dispositions.next(), dispositions.next()) else {
        return Err(FormError::Malformed);
    };
    let name = field_name(disposition.value)?;
    Ok((name, &raw[len..]))
}

/// The `name` of `form-data; name="…"; filename="…"` (RFC 7578 §4.2).
fn field_name(value: &[u8]) -> Result<String, FormError> {
    let value = std::str::from_utf8(value).map_err(|_| FormError::Malformed)?;
    let (kind, mut rest) = value.split_once(';').unwrap_or((value, ""));
    if !kind.trim().eq_ignore_ascii_case("form-data") {
        return Err(FormError::Malformed);
    }
    let mut name = None;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let (key, after) = rest.split_once('=').ok_or(FormError::Malformed)?;
        let key = key.trim();
        // The file name is never used, and every encoder writes it after the
        // name; naive ones leave a '"' in it unescaped. Stop reading there
        // rather than refuse such an upload.
        if key.eq_ignore_ascii_case("filename") || key.eq_ignore_ascii_case("filename*") {
            break;
        }
        let (param, after) = param_value(after.trim_start())?;
        if key.eq_ignore_ascii_case("name") && name.replace(param).is_some() {
            return Err(FormError::Malformed);
        }
        rest = after.trim_start();
        match rest.strip_prefix(';') {
            Some(next) => rest = next,
            None if rest.is_empty() => break,
            None => return Err(FormError::Malformed),
        }
    }
    name.ok_or(FormError::Malformed)
}

/// A parameter value, a token or a quoted-string with `\` escapes (RFC 2183
/// after RFC 822), and what follows it.
fn param_value(s: &str) -> Result<(String, &str), FormError> {
    if let Some(quoted) = s.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Ok((value, &quoted[i + 1..])),
                '\\' => value.push(chars.next().ok_or(FormError::Malformed)?.1),
                c => value.push(c),
            }
        }
        Err(FormError::Malformed)
    } else {
        let end = s.find([';', ' ', '\t']).unwrap_or(s.len());
        if end == 0 {
            return Err(FormError::Malformed);
        }
        Ok((s[..end].to_owned(), &s[end..]))
    }
}

#[cfg(test)]
mod tests;
