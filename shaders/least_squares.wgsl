// The least-squares GAN loss (Mao et al. 2017), per element: half the
// squared distance of the discriminator's output x to its target t.
// Concatenated after wg_reduce.wgsl and target_rows.wgsl.

fn loss_elem(x: f32, t: f32) -> vec2<f32> {
    let d = x - t;
    return vec2<f32>(0.5 * d * d, d);
}
