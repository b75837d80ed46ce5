// The critic's linear loss, per element: -s x with s = 2t - 1 (-x for a
// target 1, x for a target 0), derivative -s: the hinge GAN's generator
// loss -D(G(z)). Concatenated after wg_reduce.wgsl and target_rows.wgsl.

fn loss_elem(x: f32, t: f32) -> vec2<f32> {
    let s = 2.0 * t - 1.0;
    return vec2<f32>(-s * x, -s);
}
