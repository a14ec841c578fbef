//! The portal's icon: two linked rings (a coupling) in white on KERN's blue, as SVG for
//! the pages (`portal/assets/favicon.svg`) and drawn from the same shapes into a 32×32
//! ICO for `/favicon.ico`, which some programs still ask for without reading the page.

/// The icon as the pages link it.
pub const SVG: &str = include_str!("../../assets/favicon.svg");

/// The shapes of [`SVG`], in its 32×32 user units.
const SIZE: usize = 32;
const CORNER: f64 = 6.0;
const RINGS: [(f64, f64); 2] = [(12.0, 16.0), (20.0, 16.0)];
const RADIUS: f64 = 6.5;
const STROKE: f64 = 3.0;
/// `#1a3da5`, KERN's action colour.
const BLUE: [f64; 3] = [26.0, 61.0, 165.0];
const WHITE: [f64; 3] = [255.0, 255.0, 255.0];
/// Samples per pixel in each direction (edges smoothed).
const SAMPLES: usize = 4;

/// The colour at a point, `None` outside the rounded square.
fn colour_at(x: f64, y: f64) -> Option<[f64; 3]> {
    let size = SIZE as f64;
    // Distance outside the rounded corners.
    let cx = x.clamp(CORNER, size - CORNER);
    let cy = y.clamp(CORNER, size - CORNER);
    if (x - cx).hypot(y - cy) > CORNER {
        return None;
    }
    let on_ring = RINGS
        .iter()
        .any(|(rx, ry)| ((x - rx).hypot(y - ry) - RADIUS).abs() <= STROKE / 2.0);
    Some(if on_ring { WHITE } else { BLUE })
}

/// The icon's pixels, top row first, as straight-alpha BGRA.
fn pixels() -> Vec<[u8; 4]> {
    let mut out = Vec::with_capacity(SIZE * SIZE);
    let per_pixel = (SAMPLES * SAMPLES) as f64;
    for row in 0..SIZE {
        for column in 0..SIZE {
            let mut sum = [0.0; 3];
            let mut covered = 0.0;
            for sy in 0..SAMPLES {
                for sx in 0..SAMPLES {
                    let x = column as f64 + (sx as f64 + 0.5) / SAMPLES as f64;
                    let y = row as f64 + (sy as f64 + 0.5) / SAMPLES as f64;
                    if let Some(colour) = colour_at(x, y) {
                        for (total, channel) in sum.iter_mut().zip(colour) {
                            *total += channel;
                        }
                        covered += 1.0;
                    }
                }
            }
            let [r, g, b] = if covered > 0.0 {
                sum.map(|total| total / covered)
            } else {
                [0.0; 3]
            };
            let alpha = covered / per_pixel * 255.0;
            out.push([b, g, r, alpha].map(|v| v.round().clamp(0.0, 255.0) as u8));
        }
    }
    out
}

/// The icon as an ICO file: one 32×32 image, 32 bits per pixel (a BMP without its file
/// header, rows bottom up, followed by the transparency mask that the alpha makes moot).
pub fn ico() -> Vec<u8> {
    let size = SIZE as u32;
    let pixels = pixels();
    let mask_row = SIZE.div_ceil(32) * 4;
    let image_len = 40 + pixels.len() * 4 + mask_row * SIZE;
    let mut ico = Vec::with_capacity(6 + 16 + image_len);
    // ICONDIR: reserved, type 1 (icon), one image.
    ico.extend_from_slice(&[0, 0, 1, 0, 1, 0]);
    // ICONDIRENTRY: width, height, no palette, reserved, planes, bits, size, offset.
    ico.extend_from_slice(&[SIZE as u8, SIZE as u8, 0, 0]);
    ico.extend_from_slice(&1u16.to_le_bytes());
    ico.extend_from_slice(&32u16.to_le_bytes());
    ico.extend_from_slice(&(image_len as u32).to_le_bytes());
    ico.extend_from_slice(&22u32.to_le_bytes());
    // BITMAPINFOHEADER: the height counts the image and its mask.
    ico.extend_from_slice(&40u32.to_le_bytes());
    ico.extend_from_slice(&size.to_le_bytes());
    ico.extend_from_slice(&(size * 2).to_le_bytes());
    ico.extend_from_slice(&1u16.to_le_bytes());
    ico.extend_from_slice(&32u16.to_le_bytes());
    ico.extend_from_slice(&[0; 24]);
    for row in pixels.chunks(SIZE).rev() {
        for pixel in row {
            ico.extend_from_slice(pixel);
        }
    }
    ico.resize(ico.len() + mask_row * SIZE, 0);
    ico
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ico_holds_one_32_pixel_image_of_the_svgs_shapes() {
        let ico = ico();
        assert_eq!(&ico[..6], &[0, 0, 1, 0, 1, 0]);
        assert_eq!((ico[6], ico[7]), (32, 32));
        let len = u32::from_le_bytes([ico[14], ico[15], ico[16], ico[17]]) as usize;
        assert_eq!(ico.len(), 22 + len);
        // The corners are transparent, the middle between the rings blue, a ring white.
        let pixels = pixels();
        assert_eq!(pixels[0][3], 0);
        assert_eq!(pixels[16 * SIZE + 16], [165, 61, 26, 255]);
        assert_eq!(pixels[16 * SIZE + 5], [255, 255, 255, 255]);
        assert!(SVG.contains("#1a3da5") && SVG.contains("r=\"6.5\""));
    }
}
