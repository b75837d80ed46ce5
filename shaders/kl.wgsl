// Gaussian KL to N(0, I) (concatenated after wg_reduce.wgsl).
//
// h [R, 2L]: row r holds mu (columns 0..L) then logvar (columns L..2L).
// With c = clamp(logvar, -C, C) (C = logvar_clamp, see kl.rs), one
// workgroup per row:
//   row_kl[r] = 0.5 * sum_j ((exp(c) - 1 - c) + mu^2)
//             = -0.5 * sum_j (1 + c - mu^2 - exp(c))
// Backward (kl_rows_grad), into dh [R, 2L], overwritten or added to:
//   dmu = mu * gscale,  dlogvar = 0.5 (exp(c) - 1) * gscale where |logvar| <= C, else 0.

struct KlParams {
    rows: u32,
    l: u32,
    gscale: f32,
    accumulate: u32,
    clamp_c: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> kp: KlParams;
@group(0) @binding(1) var<storage, read> k_h: array<f32>;
@group(0) @binding(2) var<storage, read_write> k_row: array<f32>;
@group(0) @binding(3) var<storage, read_write> k_dh: array<f32>;

fn kl_row_sum(lid: u32, base: u32) -> f32 {
    var acc = 0.0;
    for (var j = lid; j < kp.l; j = j + 256u) {
        let mu = k_h[base + j];
        let c = clamp(k_h[base + kp.l + j], -kp.clamp_c, kp.clamp_c);
        acc = acc + ((exp(c) - 1.0 - c) + mu * mu);
    }
    return 0.5 * wg_sum(lid, acc);
}

@compute @workgroup_size(256)
fn kl_rows_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = wid.x + wid.y * nwg.x;
    if (r >= kp.rows) { return; } // whole workgroup: uniform
    let base = r * 2u * kp.l;
    let s = kl_row_sum(lid.x, base);
    for (var j = lid.x; j < kp.l; j = j + 256u) {
        let mu = k_h[base + j];
        let lv = k_h[base + kp.l + j];
        let c = clamp(lv, -kp.clamp_c, kp.clamp_c);
        var gmu = mu * kp.gscale;
        var glv = select(0.0, 0.5 * (exp(c) - 1.0) * kp.gscale, abs(lv) <= kp.clamp_c);
        if (kp.accumulate != 0u) {
            gmu = gmu + k_dh[base + j];
            glv = glv + k_dh[base + kp.l + j];
        }
        k_dh[base + j] = gmu;
        k_dh[base + kp.l + j] = glv;
    }
    if (lid.x == 0u) {
        k_row[r] = s;
    }
}

@compute @workgroup_size(256)
fn kl_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = wid.x + wid.y * nwg.x;
    if (r >= kp.rows) { return; }
    let s = kl_row_sum(lid.x, r * 2u * kp.l);
    if (lid.x == 0u) {
        k_row[r] = s;
    }
}
