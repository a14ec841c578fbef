//! Phone photos as attachments: a typical photo (8–12 MB) is larger than an authority's
//! limit and carries metadata the citizen may not mean to send (where and when it was
//! taken, the device). A JPEG or PNG is decoded, turned upright (its EXIF orientation),
//! scaled down until it fits the limit, and written anew — without any metadata. The
//! GPS position the photo held is read first and offered for a report's location; it is
//! never stored with the file.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

/// The longest edge a photo keeps at most: enough to read a licence plate or a crack.
const LONGEST_EDGE: u32 = 2560;

/// A photo made ready to store.
#[derive(Debug)]
pub struct Prepared {
    pub content: Vec<u8>,
    pub media_type: &'static str,
    /// Where the photo was taken (latitude, longitude), if it said so.
    pub position: Option<(f64, f64)>,
}

/// Why a photo cannot be taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not a picture this module can read.
    Unreadable,
    /// Even scaled down it does not fit.
    TooLarge,
}

/// `content` (JPEG or PNG, by its bytes) made to fit `max_bytes`, upright and without
/// metadata. A PNG that fits stays a PNG (screenshots, scans); anything else is JPEG.
pub fn prepare(content: &[u8], max_bytes: usize) -> Result<Prepared, Refused> {
    let position = position_of(content);
    let mut reader = ImageReader::new(Cursor::new(content))
        .with_guessed_format()
        .map_err(|_| Refused::Unreadable)?;
    // A bomb (a small file claiming a huge picture) is refused before decoding.
    let mut limits = Limits::default();
    limits.max_image_width = Some(20_000);
    limits.max_image_height = Some(20_000);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let png = reader.format() == Some(image::ImageFormat::Png);
    let mut decoder = reader.into_decoder().map_err(|_| Refused::Unreadable)?;
    let orientation = decoder.orientation().map_err(|_| Refused::Unreadable)?;
    let mut picture = DynamicImage::from_decoder(decoder).map_err(|_| Refused::Unreadable)?;
    picture.apply_orientation(orientation);
    if png {
        let mut out = Vec::new();
        if picture
            .write_with_encoder(PngEncoder::new(&mut out))
            .is_ok()
            && out.len() <= max_bytes
        {
            return Ok(Prepared {
                content: out,
                media_type: "image/png",
                position,
            });
        }
    }
    let mut edge = LONGEST_EDGE;
    loop {
        let scaled = if picture.width().max(picture.height()) > edge {
            picture.resize(edge, edge, FilterType::Triangle)
        } else {
            picture.clone()
        };
        let rgb = DynamicImage::ImageRgb8(scaled.to_rgb8());
        let mut out = Vec::new();
        rgb.write_with_encoder(JpegEncoder::new_with_quality(&mut out, 85))
            .map_err(|_| Refused::Unreadable)?;
        if out.len() <= max_bytes {
            return Ok(Prepared {
                content: out,
                media_type: "image/jpeg",
                position,
            });
        }
        if edge <= 640 {
            return Err(Refused::TooLarge);
        }
        edge = edge * 3 / 4;
    }
}

/// Whether a place that takes these media types takes phone photos (and so scales them).
pub fn taken_by(media_types: &[String]) -> bool {
    media_types
        .iter()
        .any(|t| t == "image/jpeg" || t == "image/png")
}

/// [`prepare`] on a blocking thread (decoding a large photo takes a core for a moment),
/// with the file renamed to its new type.
pub async fn fit(
    content: Vec<u8>,
    filename: &str,
    max_bytes: usize,
) -> Result<(Prepared, String), Refused> {
    let prepared = tokio::task::spawn_blocking(move || prepare(&content, max_bytes))
        .await
        .map_err(|_| Refused::Unreadable)??;
    let filename = renamed(filename, prepared.media_type);
    Ok((prepared, filename))
}

/// `filename` with the ending of `media_type` (a PNG photo stored as JPEG).
pub fn renamed(filename: &str, media_type: &str) -> String {
    let ending = if media_type == "image/png" {
        "png"
    } else {
        "jpg"
    };
    let stem = match filename.rsplit_once('.') {
        Some((stem, old))
            if ["jpg", "jpeg", "png"].contains(&old.to_ascii_lowercase().as_str()) =>
        {
            if (ending == "jpg" && old.eq_ignore_ascii_case("jpeg"))
                || old.eq_ignore_ascii_case(ending)
            {
                return filename.to_owned();
            }
            stem
        }
        _ => filename,
    };
    format!("{stem}.{ending}")
}

/// The GPS position in the photo's EXIF, as decimal degrees.
pub fn position_of(content: &[u8]) -> Option<(f64, f64)> {
    let exif = exif::Reader::new()
        .read_from_container(&mut Cursor::new(content))
        .ok()?;
    let degrees = |tag: exif::Tag, reference: exif::Tag, negative: &[u8]| -> Option<f64> {
        let field = exif.get_field(tag, exif::In::PRIMARY)?;
        let exif::Value::Rational(parts) = &field.value else {
            return None;
        };
        let [d, m, s] = parts.as_slice() else {
            return None;
        };
        let value = d.to_f64() + m.to_f64() / 60.0 + s.to_f64() / 3600.0;
        let sign = match &exif.get_field(reference, exif::In::PRIMARY)?.value {
            exif::Value::Ascii(texts)
                if texts.first().is_some_and(|t| t.as_slice() == negative) =>
            {
                -1.0
            }
            _ => 1.0,
        };
        value.is_finite().then_some(sign * value)
    };
    let latitude = degrees(exif::Tag::GPSLatitude, exif::Tag::GPSLatitudeRef, b"S")?;
    let longitude = degrees(exif::Tag::GPSLongitude, exif::Tag::GPSLongitudeRef, b"W")?;
    ((-90.0..=90.0).contains(&latitude) && (-180.0..=180.0).contains(&longitude))
        .then_some((latitude, longitude))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JPEG of `width` × `height` noise: it compresses as badly as a photo. (A photo
    /// with a GPS position: tests/tests/portal_reliance.rs.)
    fn noisy_jpeg(width: u32, height: u32) -> Vec<u8> {
        let mut seed = 7u32;
        let picture = image::RgbImage::from_fn(width, height, |_, _| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let [a, b, c, _] = seed.to_le_bytes();
            image::Rgb([a, b, c])
        });
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(picture)
            .write_with_encoder(JpegEncoder::new_with_quality(&mut out, 100))
            .unwrap();
        out
    }

    #[test]
    fn a_large_photo_is_scaled_below_the_limit_and_loses_its_metadata() {
        let photo = noisy_jpeg(2000, 1500);
        let limit = photo.len() / 3;
        let prepared = prepare(&photo, limit).unwrap();
        assert!(prepared.content.len() <= limit);
        assert_eq!(prepared.media_type, "image/jpeg");
        assert_eq!(prepared.position, None);
        let back = image::load_from_memory(&prepared.content).unwrap();
        assert!(back.width() <= LONGEST_EDGE && back.width() * 3 == back.height() * 4);
    }

    #[test]
    fn a_png_photo_gets_a_jpeg_name() {
        assert_eq!(renamed("IMG_1.PNG", "image/jpeg"), "IMG_1.jpg");
        assert_eq!(renamed("scan.png", "image/png"), "scan.png");
        assert_eq!(renamed("foto.jpeg", "image/jpeg"), "foto.jpeg");
        assert_eq!(renamed("foto", "image/jpeg"), "foto.jpg");
    }

    #[test]
    fn what_is_no_picture_is_refused() {
        assert_eq!(prepare(b"%PDF-1.4", 1000).unwrap_err(), Refused::Unreadable);
    }
}
