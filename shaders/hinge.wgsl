// The hinge loss of a discriminator (Lim & Ye 2017; Miyato et al. 2018),
// per element: max(0, 1 - s x) with s = 2t - 1 (+1 for a real image's
// target 1, -1 for a fake's 0); its derivative -s where the margin is
// unmet, 0 where it is met (and at the kink). Concatenated after
// wg_reduce.wgsl and target_rows.wgsl.

fn loss_elem(x: f32, t: f32) -> vec2<f32> {
    let s = 2.0 * t - 1.0;
    let m = 1.0 - s * x;
    return vec2<f32>(max(m, 0.0), select(0.0, -s, m > 0.0));
}
