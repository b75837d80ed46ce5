// Binary cross-entropy with logits against noisy targets (concatenated after
// philox.wgsl, wg_reduce.wgsl and bce.wgsl: it uses philox_draw,
// philox_unit, wg_sum, bce_elem, bce_sigmoid and bce.wgsl's bindings 1..4).
//
// The article's discriminator labels, `labels += 0.05 * uniform`: the target
// of element i = r*F + f is t = z + noise * u with u = philox_unit(word 0 of
// the block of counter (i, counters[0], stream, 0)), drawn afresh per element
// and step and reproduced exactly by the CPU (u is exact in f32). Real
// targets 1 become 1 + noise*u, fake targets 0 become noise*u. One workgroup
// per row, as bce_rows_grad:
//   l = max(x, 0) - x t + log1p(exp(-|x|))  (= softplus(x) - t x, any real t)
//   row_loss[r] = sum_f l                    (fixed-order tree)
//   grad = (sigmoid(x) - t) * gscale
// For t > 1 this is no longer a cross-entropy between two distributions but
// the same function (and gradient) TensorFlow's
// sigmoid_cross_entropy_with_logits computes for such labels.
// With noise = 0, t = z + 0 * u = z exactly: the same bits as bce_rows_grad
// (the training step records bce_rows_grad then, to keep its numerics).

struct BceNoiseParams {
    rows: u32,
    f: u32,
    gscale: f32,
    noise: f32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    _pad: u32,
}

// bindings 1..4: bce.wgsl's b_x, b_z, b_row, b_grad
@group(0) @binding(0) var<uniform> bnp: BceNoiseParams;
@group(0) @binding(5) var<storage, read> bn_counters: array<u32>;

// The noisy target of element i with clean target z.
fn bce_noisy_target(i: u32, z: f32) -> f32 {
    let w = philox_draw(i, bn_counters[0], bnp.stream, vec2<u32>(bnp.seed_lo, bnp.seed_hi));
    return z + bnp.noise * philox_unit(w.x);
}

@compute @workgroup_size(256)
fn bce_rows_label_noise_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = wid.x + wid.y * nwg.x;
    if (r >= bnp.rows) { return; } // whole workgroup: uniform
    let base = r * bnp.f;
    var acc = 0.0;
    for (var j = lid.x; j < bnp.f; j = j + 256u) {
        let x = b_x[base + j];
        let t = bce_noisy_target(base + j, b_z[base + j]);
        acc = acc + bce_elem(x, t);
        b_grad[base + j] = (bce_sigmoid(x) - t) * bnp.gscale;
    }
    let s = wg_sum(lid.x, acc);
    if (lid.x == 0u) {
        b_row[r] = s;
    }
}
