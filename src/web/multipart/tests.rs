//! Tests for `multipart::parse`: bodies built by a real client encoder
//! (ureq's), then edited where a test needs a body no encoder would write.

use super::*;
use std::io::Read;
use ureq::unversioned::multipart::{Form as Encoder, Part};

const LIMIT: usize = 2 * 1024 * 1024;

/// An image-like payload holding the byte sequences a sloppy splitter
/// trips on: CRLF, "--", and CRLF "--" not followed by the boundary.
const IMAGE: &[u8] = b"\x89PNG\r\n\x1a\n\0\xff\r\n--\r\n\r\n--not-the-boundary\r\n";

/// The Content-Type and body a real client encoder produces.
fn encode(mut form: Encoder) -> (String, Vec<u8>) {
    let content_type = format!("multipart/form-data; boundary={}", form.boundary());
    let mut body = Vec::new();
    form.read_to_end(&mut body).unwrap();
    (content_type, body)
}

fn image_part(bytes: &[u8]) -> Part<'_> {
    Part::bytes(bytes)
        .file_name("me.png")
        .mime_str("image/png")
        .unwrap()
}

fn profile() -> (String, Vec<u8>) {
    encode(
        Encoder::new()
            .text("name", "Ada Lovelace")
            .text("email", "ädä@example.com")
            .text("current_password", "hunter2-correct-horse")
            .part("image", image_part(IMAGE)),
    )
}

fn replace(body: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = memmem::find(body, from).unwrap();
    [&body[..at], to, &body[at + from.len()..]].concat()
}

#[test]
fn text_fields_and_image_are_read() {
    let (content_type, body) = profile();
    let form = parse(&content_type, &body, LIMIT).unwrap();
    let fields: Vec<(&str, &str)> = form
        .fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("name", "Ada Lovelace"),
            ("email", "ädä@example.com"),
            ("current_password", "hunter2-correct-horse")
        ]
    );
    assert_eq!(form.image.as_deref(), Some(IMAGE));
    assert!(!format!("{form:?}").contains("hunter2"));
    assert!(body.len() <= body_limit(IMAGE.len()));
}

#[test]
fn no_image_or_an_empty_one_is_none() {
    let (content_type, body) = encode(Encoder::new().text("name", "Ada"));
    assert_eq!(parse(&content_type, &body, LIMIT).unwrap().image, None);
    let (content_type, body) = encode(Encoder::new().part("image", image_part(b"")));
    assert_eq!(parse(&content_type, &body, LIMIT).unwrap(), Form::default());
    // No part at all: only a close delimiter is a form without fields,
    // but an empty body is no multipart body (RFC 2046 wants a delimiter).
    let boundary = content_type.split_once("boundary=").unwrap().1;
    let close = [b"\r\n--", boundary.as_bytes(), b"--"].concat();
    let only_close = &body[memmem::rfind(&body, &close).unwrap() + 2..];
    assert_eq!(
        parse(&content_type, only_close, LIMIT).unwrap(),
        Form::default()
    );
    assert_eq!(parse(&content_type, b"", LIMIT), Err(FormError::Malformed));
}

#[test]
fn other_content_types_are_not_multipart() {
    let (_, body) = profile();
    for content_type in [
        "application/json",
        "text/plain",
        "multipart/mixed; boundary=x",
        "",
        "multipart/form-datax",
    ] {
        assert_eq!(
            parse(content_type, &body, LIMIT),
            Err(FormError::NotMultipart),
            "{content_type}"
        );
    }
}

#[test]
fn the_boundary_must_be_usable_and_match() {
    let (content_type, body) = profile();
    let boundary = content_type.split_once("boundary=").unwrap().1;
    let long = "x".repeat(71);
    for bad in [
        "multipart/form-data".to_owned(),
        "multipart/form-data; boundary=".to_owned(),
        "multipart/form-data; boundary=\"\"".to_owned(),
        format!("multipart/form-data; boundary={long}"),
        format!("multipart/form-data; boundary={boundary}; boundary={boundary}"),
        format!("multipart/form-data; boundary={boundary}x"),
        "multipart/form-data; boundary=other".to_owned(),
    ] {
        assert_eq!(
            parse(&bad, &body, LIMIT),
            Err(FormError::Malformed),
            "{bad}"
        );
    }
    let quoted = format!("Multipart/Form-Data; charset=utf-8; BOUNDARY=\"{boundary}\"");
    assert_eq!(
        parse(&quoted, &body, LIMIT).unwrap().image.as_deref(),
        Some(IMAGE)
    );
}

#[test]
fn two_images_are_refused() {
    let (content_type, body) = encode(
        Encoder::new()
            .part("image", image_part(IMAGE))
            .part("image", image_part(IMAGE)),
    );
    assert_eq!(
        parse(&content_type, &body, LIMIT),
        Err(FormError::Malformed)
    );
}

#[test]
fn sizes_and_counts_are_bounded() {
    let at_limit = "a".repeat(MAX_FIELD_BYTES);
    let over = "a".repeat(MAX_FIELD_BYTES + 1);
    let (content_type, body) = encode(Encoder::new().text("name", &at_limit));
    assert!(parse(&content_type, &body, LIMIT).is_ok());
    let (content_type, body) = encode(Encoder::new().text("name", &over));
    assert_eq!(parse(&content_type, &body, LIMIT), Err(FormError::TooLarge));

    let (content_type, body) = encode(Encoder::new().part("image", image_part(IMAGE)));
    assert!(parse(&content_type, &body, IMAGE.len()).is_ok());
    assert_eq!(
        parse(&content_type, &body, IMAGE.len() - 1),
        Err(FormError::TooLarge)
    );

    let names: Vec<String> = (0..=MAX_PARTS).map(|i| format!("f{i}")).collect();
    let many = |n: usize| {
        names[..n]
            .iter()
            .fold(Encoder::new(), |form, name| form.text(name, "v"))
    };
    let (content_type, body) = encode(many(MAX_PARTS));
    assert_eq!(
        parse(&content_type, &body, LIMIT).unwrap().fields.len(),
        MAX_PARTS
    );
    let (content_type, body) = encode(many(MAX_PARTS + 1));
    assert_eq!(parse(&content_type, &body, LIMIT), Err(FormError::TooLarge));
}

#[test]
fn file_names_with_paths_and_quotes_do_not_matter() {
    for file_name in [
        r"C:\fakepath\my photo.png",
        "../../etc/passwd",
        "my \"best\" photo.png",
        "a%22b.png",
        "ü.png",
    ] {
        let part = Part::bytes(IMAGE).file_name(file_name);
        let (content_type, body) = encode(Encoder::new().part("image", part).text("name", "Ada"));
        let form = parse(&content_type, &body, LIMIT).unwrap();
        assert_eq!(form.image.as_deref(), Some(IMAGE), "{file_name}");
        assert_eq!(form.fields, [("name".to_owned(), "Ada".to_owned())]);
    }
    // A name may be escaped as a quoted-string; a part without one is refused.
    let (content_type, body) = encode(Encoder::new().text("first", "Ada"));
    let escaped = replace(&body, b"name=\"first\"", br#"name="fi\"rst""#);
    assert_eq!(
        parse(&content_type, &escaped, LIMIT).unwrap().fields[0].0,
        "fi\"rst"
    );
    let nameless = replace(&body, b"name=\"first\"", b"filename=\"first\"");
    assert_eq!(
        parse(&content_type, &nameless, LIMIT),
        Err(FormError::Malformed)
    );
    let attachment = replace(&body, b"form-data;", b"attachment;");
    assert_eq!(
        parse(&content_type, &attachment, LIMIT),
        Err(FormError::Malformed)
    );
    let undisposed = replace(&body, b"Content-Disposition", b"Content-Dispositiox");
    assert_eq!(
        parse(&content_type, &undisposed, LIMIT),
        Err(FormError::Malformed)
    );
}

#[test]
fn crlf_edge_cases() {
    let (content_type, body) = profile();
    let expected = parse(&content_type, &body, LIMIT).unwrap();
    let boundary = content_type.split_once("boundary=").unwrap().1.as_bytes();
    let first = [b"--", boundary, b"\r\n"].concat();

    // Preamble, epilogue and transport padding are allowed and ignored.
    let framed = [b"preamble\r\n".as_slice(), &body, b"epilogue\r\n"].concat();
    assert_eq!(parse(&content_type, &framed, LIMIT).unwrap(), expected);
    let padded = replace(&body, &first, &[b"--", boundary, b" \t\r\n"].concat());
    assert_eq!(parse(&content_type, &padded, LIMIT).unwrap(), expected);

    // Bare LF line endings, a missing close delimiter, junk after a
    // delimiter and a part with no blank line after its headers are not
    // multipart.
    let bare_lf: Vec<u8> = String::from_utf8_lossy(&body)
        .replace("\r\n", "\n")
        .into_bytes();
    assert_eq!(
        parse(&content_type, &bare_lf, LIMIT),
        Err(FormError::Malformed)
    );
    let close = [b"\r\n--", boundary, b"--"].concat();
    let cut = &body[..memmem::rfind(&body, &close).unwrap()];
    assert_eq!(parse(&content_type, cut, LIMIT), Err(FormError::Malformed));
    let junk = replace(&body, &first, &[b"--", boundary, b"junk\r\n"].concat());
    assert_eq!(
        parse(&content_type, &junk, LIMIT),
        Err(FormError::Malformed)
    );
    let headless = replace(&body, b"Ada Lovelace", b"")
        .into_iter()
        .collect::<Vec<_>>();
    let headless = replace(&headless, b"\r\n\r\n\r\n", b"\r\n");
    assert_eq!(
        parse(&content_type, &headless, LIMIT),
        Err(FormError::Malformed)
    );

    // Values keep their own CRLFs, and "--" that is no delimiter.
    let value = "line one\r\n--line two\r\n";
    let (content_type, body) = encode(Encoder::new().text("name", value));
    assert_eq!(
        parse(&content_type, &body, LIMIT).unwrap().fields[0].1,
        value
    );
}

#[test]
fn text_must_be_utf8() {
    let (content_type, body) = encode(Encoder::new().part("name", Part::bytes(b"\xff\xfe")));
    assert_eq!(
        parse(&content_type, &body, LIMIT),
        Err(FormError::Malformed)
    );
}

#[test]
fn random_and_mangled_bodies_never_panic() {
    let (content_type, body) = profile();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..5000 {
        let mut bytes = if round % 4 == 0 {
            (0..next() % 300).map(|_| next() as u8).collect()
        } else {
            body.clone()
        };
        for _ in 0..next() % 6 {
            if let Some(len) = std::num::NonZeroUsize::new(bytes.len()) {
                let at = next() as usize % len;
                // Mostly the bytes the format is made of.
                bytes[at] = *b"\r\n-\";= abcx"
                    .get(next() as usize % 16)
                    .unwrap_or(&(next() as u8));
            }
        }
        bytes.truncate(next() as usize % (bytes.len() + 1));
        let _ = parse(&content_type, &bytes, 64);
        let junk_type: String = (0..next() % 40)
            .map(|_| char::from(b"multipart/form-data; boundary=\"x"[next() as usize % 32]))
            .collect();
        let _ = parse(&junk_type, &bytes, LIMIT);
    }
}
