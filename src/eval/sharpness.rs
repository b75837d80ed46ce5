//! Image sharpness as the mean squared Laplacian.
//!
//! The 4-neighbour Laplacian (3x3 kernel `[0,1,0; 1,-4,1; 0,1,0]`) is applied
//! at every valid interior pixel of each 28x28 image (26 x 26 positions, no
//! padding); its square is averaged over those positions and then over the
//! images. Units: squared pixel intensity (for pixels in `[0, 1]` the value
//! lies in `[0, 64]`). Blurry images (typical of a VAE) score low, crisp edges
//! score high; a constant image scores 0.

use crate::Result;

const OP: &str = "sharpness";

/// Image side (MNIST).
pub const SIDE: usize = 28;

/// Mean squared Laplacian of one `28 x 28` row-major image, in squared
/// intensity units.
fn image_msl(img: &[f32]) -> f64 {
    let mut sum = 0.0f64;
    for y in 1..SIDE - 1 {
        for x in 1..SIDE - 1 {
            let at = |yy: usize, xx: usize| img[yy * SIDE + xx] as f64;
            let l = at(y - 1, x) + at(y + 1, x) + at(y, x - 1) + at(y, x + 1) - 4.0 * at(y, x);
            sum += l * l;
        }
    }
    sum / ((SIDE - 2) * (SIDE - 2)) as f64
}

/// Mean squared Laplacian of `n` images (`n x 784` row-major), averaged over
/// the 26x26 interior of each image and then over images.
pub fn mean_squared_laplacian(images: &[f32]) -> Result<f64> {
    let n = super::rows(OP, "images", images, SIDE * SIDE, 1)?;
    let total: f64 = images.chunks_exact(SIDE * SIDE).map(image_msl).sum();
    Ok(total / n as f64)
}
