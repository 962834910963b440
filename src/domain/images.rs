//! Profile pictures: an uploaded file becomes a clean JPEG, PNG, GIF or WebP.
//!
//! The format is judged by the file's magic bytes, never by a declared type.
//! The header's dimensions are checked against the pixel limit before a single
//! pixel is decoded, so a small file declaring a huge canvas (a decompression
//! bomb) is refused without allocating; the `image` crate's `Limits` bound
//! its decoders' buffers as well. The pixels are then re-encoded from
//! scratch: nothing of the original file but its pixels survives, so EXIF
//! (and the GPS position a phone writes into it), XMP, ICC profiles, comments
//! and text chunks are all gone.
//!
//! Choices, each the simplest that keeps the output a faithful avatar:
//! - JPEG is re-encoded at quality [`JPEG_QUALITY`]: visually lossless for a
//!   photo, and a second generation of JPEG loss is what stripping costs.
//! - WebP is re-encoded lossless, the only WebP encoder `image` has; a lossy
//!   WebP photo comes out several times larger than it went in.
//! - GIF and APNG keep their first frame only: re-encoding every frame would
//!   cost time and memory in proportion to a frame count the uploader chooses.
//! - The EXIF orientation is applied before it is dropped, so a phone photo
//!   taken in portrait stays upright. ICC profiles are dropped, not applied:
//!   a wide-gamut photo may look slightly less saturated.
//!
//! Cost at the default 16,777,216 pixels (4096×4096, release build): about
//! 0.3–0.75 s of one core, and a peak of 55–160 MB: the decoded pixels (up to
//! 4 bytes a pixel, the `Limits::max_alloc` below, so a 16-bit PNG must have
//! proportionally fewer pixels), a second copy while a photo is rotated by
//! 90°, the progressive JPEG decoder's coefficients (up to 6 bytes a pixel,
//! bounded by the pixel check, not by `Limits`; the decoder also caps scans at
//! 100), or the lossless WebP encoder's working memory. Callers should bound
//! how many uploads are cleaned at once.

use image::codecs::gif::GifEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::metadata::Orientation;
use image::{ColorType, DynamicImage, Frame, ImageDecoder, ImageFormat, ImageReader, Limits};
use std::fmt;
use std::io::Cursor;

/// The quality a JPEG is re-encoded at (1–100).
pub const JPEG_QUALITY: u8 = 90;

/// Room the decoders may allocate beyond the pixel buffer itself: row
/// buffers, palettes, Huffman tables, a GIF frame smaller than its canvas.
pub const ALLOC_SLACK: u64 = 16 * 1024 * 1024;

/// Why an upload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageError {
    /// Not JPEG/PNG/GIF/WebP by content, undecodable, or over the pixel
    /// limit (415 `unsupported_media_type`).
    Unsupported,
    /// More bytes than `--max-image-bytes` (413 `payload_too_large`).
    TooLarge,
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImageError::Unsupported => "not a supported image",
            ImageError::TooLarge => "image too large",
        })
    }
}

impl std::error::Error for ImageError {}

/// An image fit to store and serve: freshly encoded, without metadata.
#[derive(Clone, PartialEq, Eq)]
pub struct CleanImage {
    /// `image/jpeg`, `image/png`, `image/gif` or `image/webp`.
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
    /// After the EXIF orientation was applied.
    pub width: u32,
    pub height: u32,
}

// Deriving Debug would print up to megabytes of image bytes into a log line.
impl fmt::Debug for CleanImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CleanImage")
            .field("content_type", &self.content_type)
            .field("bytes", &format_args!("[{} bytes]", self.bytes.len()))
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

/// The four formats an avatar may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Jpeg,
    Png,
    Gif,
    WebP,
}

impl Format {
    /// The format by its magic bytes; the declared type is never consulted,
    /// so a text file sent as `image/png` is refused here.
    fn sniff(bytes: &[u8]) -> Option<Format> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Format::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Format::Jpeg)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(Format::Gif)
        } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
            Some(Format::WebP)
        } else {
            None
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            Format::Jpeg => ImageFormat::Jpeg,
            Format::Png => ImageFormat::Png,
            Format::Gif => ImageFormat::Gif,
            Format::WebP => ImageFormat::WebP,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Gif => "image/gif",
            Format::WebP => "image/webp",
        }
    }
}

/// Sniffs the format from magic bytes (never the declared type), checks the
/// byte limit, refuses `width * height > max_pixels` from the header before
/// decoding, fully decodes under `image`'s `Limits`, and re-encodes to the
/// same format so that no metadata survives.
pub fn clean(bytes: &[u8], max_bytes: usize, max_pixels: u64) -> Result<CleanImage, ImageError> {
    if bytes.len() > max_bytes {
        return Err(ImageError::TooLarge);
    }
    let format = Format::sniff(bytes).ok_or(ImageError::Unsupported)?;
    let image = decode(bytes, format, max_pixels).ok_or(ImageError::Unsupported)?;
    let (width, height) = (image.width(), image.height());
    let bytes = encode(image, format).ok_or(ImageError::Unsupported)?;
    Ok(CleanImage {
        content_type: format.content_type(),
        bytes,
        width,
        height,
    })
}

/// The decoder limits for `max_pixels`: no side longer than the whole pixel
/// budget, and no allocation past 4 bytes a pixel plus slack.
fn limits(max_pixels: u64) -> Limits {
    let side = u32::try_from(max_pixels).unwrap_or(u32::MAX);
    // `Limits` is non-exhaustive: start from its default and set every field.
    let mut limits = Limits::default();
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    limits.max_alloc = Some(max_pixels.saturating_mul(4).saturating_add(ALLOC_SLACK));
    limits
}

/// The pixels, upright, or `None` for anything undecodable or over a limit.
fn decode(bytes: &[u8], format: Format, max_pixels: u64) -> Option<DynamicImage> {
    let limits = limits(max_pixels);
    let max_alloc = limits.max_alloc;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    reader.limits(limits);
    // This reads the header only; no pixel buffer exists yet.
    let mut decoder = reader.into_decoder().ok()?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 || u64::from(width) * u64::from(height) > max_pixels {
        return None;
    }
    // `into_decoder` leaves this check to `decode()`, which we don't use: the
    // output buffer must fit too (it is 8 bytes a pixel for RGBA16).
    if max_alloc.is_some_and(|max| decoder.total_bytes() > max) {
        return None;
    }
    // A missing or corrupt EXIF block only means "no rotation".
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).ok()?;
    image.apply_orientation(orientation);
    Some(image)
}

/// A fresh file holding the pixels and nothing else. The encoders write no
/// metadata unless asked to (`set_exif_metadata`, `set_icc_profile`), and we
/// never ask.
fn encode(image: DynamicImage, format: Format) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let written = match format {
        Format::Jpeg => {
            // JPEG holds gray or RGB; a CMYK or alpha source is flattened.
            let image = match image.color() {
                ColorType::L8 | ColorType::Rgb8 => image,
                ColorType::L16 => DynamicImage::ImageLuma8(image.into_luma8()),
                _ => DynamicImage::ImageRgb8(image.into_rgb8()),
            };
            image.write_with_encoder(JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY))
        }
        Format::Png => image.write_with_encoder(PngEncoder::new(&mut out)),
        // `encode_frame` quantizes the buffer in place; `write_with_encoder`
        // would first copy it.
        Format::Gif => {
            // The trailer is written when the encoder is dropped, at the block's end.
            let mut encoder = GifEncoder::new(&mut out);
            encoder.encode_frame(Frame::new(image.into_rgba8()))
        }
        Format::WebP => {
            let image = match image.color() {
                ColorType::L8 | ColorType::La8 | ColorType::Rgb8 | ColorType::Rgba8 => image,
                _ => DynamicImage::ImageRgba8(image.into_rgba8()),
            };
            image.write_with_encoder(WebPEncoder::new_lossless(&mut out))
        }
    };
    written.ok()?;
    Some(out)
}

#[cfg(test)]
mod tests;
