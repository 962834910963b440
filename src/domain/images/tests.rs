//! Tests for `images::clean`: real images of each format built here with the
//! `image` crate's encoders, then given metadata, cut short, or made to declare
//! a huge canvas.

use super::*;
use image::{Rgba, RgbaImage};
use std::time::{Duration, Instant};

const MAX_BYTES: usize = 2 * 1024 * 1024;
const MAX_PIXELS: u64 = 16_777_216;
const SECRET: &[u8] = b"48.8584N-2.2945E-secret-place";

/// A picture with gradients and texture, so encoders have real work.
fn picture(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        Rgba([
            (x * 255 / w) as u8,
            (y * 255 / h) as u8,
            ((x ^ y) & 0xFF) as u8,
            255,
        ])
    })
}

/// `picture` encoded by the `image` crate's own encoder for `format`.
fn encoded(format: ImageFormat, w: u32, h: u32) -> Vec<u8> {
    let mut image = DynamicImage::ImageRgba8(picture(w, h));
    if format == ImageFormat::Jpeg {
        image = DynamicImage::ImageRgb8(image.into_rgb8());
    }
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A big-endian TIFF block as EXIF holds it: IFD0 with an orientation and
/// a pointer to a GPS IFD holding latitude "N 48° 51' 24.17''" and SECRET.
fn tiff_with_gps(orientation: u16) -> Vec<u8> {
    let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]| {
        t.extend_from_slice(&tag.to_be_bytes());
        t.extend_from_slice(&kind.to_be_bytes());
        t.extend_from_slice(&count.to_be_bytes());
        t.extend_from_slice(&value);
    };
    let (gps_ifd, rationals, datum) = (38u32, 80u32, 104u32);
    let mut t = b"MM\0\x2A\0\0\0\x08".to_vec();
    t.extend_from_slice(&2u16.to_be_bytes());
    let o = orientation.to_be_bytes();
    entry(&mut t, 0x0112, 3, 1, [o[0], o[1], 0, 0]); // Orientation, SHORT
    entry(&mut t, 0x8825, 4, 1, gps_ifd.to_be_bytes()); // GPSInfo IFD pointer
    t.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(t.len(), gps_ifd as usize);
    t.extend_from_slice(&3u16.to_be_bytes());
    entry(&mut t, 0x0001, 2, 2, *b"N\0\0\0"); // GPSLatitudeRef, ASCII
    entry(&mut t, 0x0002, 5, 3, rationals.to_be_bytes()); // GPSLatitude, RATIONAL×3
    let len = SECRET.len() as u32 + 1;
    entry(&mut t, 0x0012, 2, len, datum.to_be_bytes()); // GPSMapDatum, ASCII
    t.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(t.len(), rationals as usize);
    for (n, d) in [(48u32, 1u32), (51, 1), (2417, 100)] {
        t.extend_from_slice(&n.to_be_bytes());
        t.extend_from_slice(&d.to_be_bytes());
    }
    t.extend_from_slice(SECRET);
    t.push(0);
    t
}

/// `jpeg` with an EXIF APP1 segment and a COM segment spliced in after SOI.
fn jpeg_with_exif(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let segment = |marker: u8, payload: &[u8]| {
        let mut s = vec![0xFF, marker];
        s.extend_from_slice(&(payload.len() as u16 + 2).to_be_bytes());
        s.extend_from_slice(payload);
        s
    };
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend_from_slice(&tiff_with_gps(orientation));
    let mut out = jpeg[..2].to_vec();
    out.extend(segment(0xE1, &exif));
    out.extend(segment(0xFE, SECRET));
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    c.extend_from_slice(&crc32fast::hash(&c[4..]).to_be_bytes());
    c
}

/// `png` with its IHDR declaring `w`×`h`, CRC recomputed: a few dozen
/// bytes that claim an enormous canvas.
fn png_declaring(png: &[u8], w: u32, h: u32) -> Vec<u8> {
    let mut out = png.to_vec();
    out[16..20].copy_from_slice(&w.to_be_bytes());
    out[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32fast::hash(&out[12..29]);
    out[29..33].copy_from_slice(&crc.to_be_bytes());
    out
}

#[test]
fn each_format_is_cleaned_into_itself() {
    for (format, content_type) in [
        (ImageFormat::Jpeg, "image/jpeg"),
        (ImageFormat::Png, "image/png"),
        (ImageFormat::Gif, "image/gif"),
        (ImageFormat::WebP, "image/webp"),
    ] {
        let clean = clean(&encoded(format, 40, 30), MAX_BYTES, MAX_PIXELS).unwrap();
        assert_eq!(clean.content_type, content_type);
        assert_eq!((clean.width, clean.height), (40, 30));
        assert_eq!(image::guess_format(&clean.bytes).unwrap(), format);
        let again = image::load_from_memory(&clean.bytes).unwrap();
        assert_eq!((again.width(), again.height()), (40, 30), "{format:?}");
    }
}

#[test]
fn jpeg_loses_exif_gps_and_comments_but_stays_upright() {
    let dirty = jpeg_with_exif(&encoded(ImageFormat::Jpeg, 40, 20), 6);
    assert!(contains(&dirty, b"Exif") && contains(&dirty, SECRET));
    let clean = clean(&dirty, MAX_BYTES, MAX_PIXELS).unwrap();
    assert!(!contains(&clean.bytes, b"Exif"));
    assert!(!contains(&clean.bytes, SECRET));
    assert!(!contains(&clean.bytes, &2417u32.to_be_bytes()));
    // Orientation 6 means "rotate 90° clockwise to display".
    assert_eq!((clean.width, clean.height), (20, 40));
}

#[test]
fn png_loses_text_and_exif_chunks() {
    let png = encoded(ImageFormat::Png, 16, 16);
    let mut dirty = png[..33].to_vec(); // signature and IHDR
    dirty.extend(png_chunk(
        b"tEXt",
        &[b"Comment\0".as_slice(), SECRET].concat(),
    ));
    dirty.extend(png_chunk(b"eXIf", &tiff_with_gps(1)));
    dirty.extend_from_slice(&png[33..]);
    let clean = clean(&dirty, MAX_BYTES, MAX_PIXELS).unwrap();
    for marker in [b"tEXt".as_slice(), b"eXIf", b"iTXt", b"zTXt", SECRET] {
        assert!(!contains(&clean.bytes, marker));
    }
}

#[test]
fn gif_loses_comments() {
    let gif = encoded(ImageFormat::Gif, 16, 16);
    let packed = gif[10];
    let table = if packed & 0x80 != 0 {
        3 << ((packed & 7) + 1)
    } else {
        0
    };
    let at = 13 + table;
    let mut dirty = gif[..at].to_vec();
    dirty.extend_from_slice(&[0x21, 0xFE, SECRET.len() as u8]);
    dirty.extend_from_slice(SECRET);
    dirty.push(0);
    dirty.extend_from_slice(&gif[at..]);
    assert!(image::load_from_memory(&dirty).is_ok());
    let clean = clean(&dirty, MAX_BYTES, MAX_PIXELS).unwrap();
    assert!(!contains(&clean.bytes, SECRET));
}

#[test]
fn the_declared_type_is_not_trusted() {
    for text in [
        b"hello, I am not a picture\n".as_slice(),
        b"",
        b"\x89PNG\r\n\x1a\nnot really",
        // Real formats, but not ones an avatar may have.
        b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\x01\0\0\0\x01\0\0\0",
        b"II*\0\x08\0\0\0",
        b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    ] {
        assert_eq!(
            clean(text, MAX_BYTES, MAX_PIXELS),
            Err(ImageError::Unsupported)
        );
    }
}

#[test]
fn a_huge_declared_canvas_is_refused_before_decoding() {
    let png = encoded(ImageFormat::Png, 1, 1);
    let mut gif = encoded(ImageFormat::Gif, 1, 1);
    gif[6..10].copy_from_slice(&[0xFF; 4]); // logical screen 65535×65535
    let mut jpeg = encoded(ImageFormat::Jpeg, 8, 8);
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xF0, 0xFF, 0xF0]);
    for bomb in [
        png_declaring(&png, 100_000, 100_000),
        png_declaring(&png, 4097, 4097),
        gif,
        jpeg,
    ] {
        let start = Instant::now();
        assert_eq!(
            clean(&bomb, MAX_BYTES, MAX_PIXELS),
            Err(ImageError::Unsupported)
        );
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}

#[test]
fn the_pixel_limit_is_inclusive() {
    let png = encoded(ImageFormat::Png, 10, 10);
    assert!(clean(&png, MAX_BYTES, 100).is_ok());
    assert_eq!(clean(&png, MAX_BYTES, 99), Err(ImageError::Unsupported));
}

#[test]
fn the_byte_limit_is_inclusive() {
    let png = encoded(ImageFormat::Png, 10, 10);
    assert!(clean(&png, png.len(), MAX_PIXELS).is_ok());
    assert_eq!(
        clean(&png, png.len() - 1, MAX_PIXELS),
        Err(ImageError::TooLarge)
    );
}

#[test]
fn a_truncated_image_is_refused() {
    for format in [
        ImageFormat::Jpeg,
        ImageFormat::Png,
        ImageFormat::Gif,
        ImageFormat::WebP,
    ] {
        let bytes = encoded(format, 64, 64);
        for cut in [20, bytes.len() / 2, bytes.len() - 16] {
            let result = clean(&bytes[..cut], MAX_BYTES, MAX_PIXELS);
            // The JPEG decoder, like a browser, forgives a missing end of
            // file (EOI and the last few bytes); the output is still clean.
            if format == ImageFormat::Jpeg && cut == bytes.len() - 16 {
                assert!(result.is_ok());
            } else {
                assert_eq!(
                    result,
                    Err(ImageError::Unsupported),
                    "{format:?} cut at {cut}"
                );
            }
        }
    }
}

#[test]
fn random_and_mangled_bytes_never_panic() {
    let samples: Vec<Vec<u8>> = [
        ImageFormat::Jpeg,
        ImageFormat::Png,
        ImageFormat::Gif,
        ImageFormat::WebP,
    ]
    .into_iter()
    .map(|f| encoded(f, 12, 9))
    .collect();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..2000 {
        let sample = &samples[round % samples.len()];
        let mut bytes = if round % 5 == 0 {
            let len = (next() % 600) as usize;
            let mut b = sample[..12].to_vec(); // a valid magic, then noise
            b.extend((0..len).map(|_| next() as u8));
            b
        } else {
            sample.clone()
        };
        for _ in 0..1 + next() % 8 {
            let at = (next() as usize) % bytes.len();
            bytes[at] = next() as u8;
        }
        bytes.truncate(1 + (next() as usize) % bytes.len());
        let _ = clean(&bytes, MAX_BYTES, 4096);
    }
}
