//! Image grids as PNG: samples, reconstructions, latent manifolds.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::write_atomic;

/// Pixels of background between tiles.
const GAP: usize = 2;

/// Tile `rows x cols` square grayscale images of `side x side` pixels
/// (row-major, values in `[lo, hi]`, clamped) into one 8-bit PNG, written
/// atomically. Missing images (fewer than rows*cols) leave tiles blank.
pub fn save_grid(
    path: &Path,
    images: &[f32],
    side: usize,
    rows: usize,
    cols: usize,
    lo: f32,
    hi: f32,
) -> Result<()> {
    let img = grid_image(images, side, rows, cols, lo, hi)?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| Error::data(path, format!("cannot encode PNG: {e}")))?;
    write_atomic(path, &png)
}

/// The picture [`save_grid`] writes (the browser's lab draws it on a
/// canvas): `cols (side + 2) + 2` pixels wide, `rows (side + 2) + 2` high.
pub fn grid_image(
    images: &[f32],
    side: usize,
    rows: usize,
    cols: usize,
    lo: f32,
    hi: f32,
) -> Result<image::GrayImage> {
    let per = side * side;
    if side == 0
        || !images.len().is_multiple_of(per)
        || images.len() / per > rows * cols
        || hi <= lo
    {
        return Err(Error::invalid(
            "save_grid",
            format!(
                "{} values are not at most {rows}x{cols} images of {side}x{side} (range {lo}..{hi})",
                images.len()
            ),
        ));
    }
    let w = cols * side + (cols + 1) * GAP;
    let h = rows * side + (rows + 1) * GAP;
    let mut img = image::GrayImage::from_pixel(w as u32, h as u32, image::Luma([64]));
    for (k, tile) in images.chunks_exact(per).enumerate() {
        let (r, c) = (k / cols, k % cols);
        let (x0, y0) = (GAP + c * (side + GAP), GAP + r * (side + GAP));
        for (i, &v) in tile.iter().enumerate() {
            let t = ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
            let t = if t.is_nan() { 0.0 } else { t };
            img.put_pixel(
                (x0 + i % side) as u32,
                (y0 + i / side) as u32,
                image::Luma([(t * 255.0).round() as u8]),
            );
        }
    }
    Ok(img)
}
