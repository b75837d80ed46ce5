// One-sample (Monte Carlo) estimate of the VAE's KL term at the
// reparameterised sample (concatenated after wg_reduce.wgsl): the article's
// `logqz_x - logpz`, where the analytic KL (kl.wgsl) is its expectation.
//
// h [R, 2L]: row r holds mu (columns 0..L) then logvar (columns L..2L);
// eps [R, L]: the reparameterisation's noise; z [R, L]: its sample
// z = mu + exp(0.5 c) eps (reparam_forward's output, read, not recomputed),
// with c = clamp(logvar, -C, C) (C = logvar_clamp, see kl_mc.rs). Per
// latent element, the log 2pi terms cancelling:
//   log q(z|x) = -0.5 ((z - mu)^2 exp(-c) + c) = -0.5 (eps^2 + c)
//   log p(z)   = -0.5 z^2
//   row_kl[r]  = sum_j (0.5 z^2 - 0.5 (eps^2 + c))      (fixed-order tree)
// Backward (kl_mc_rows_grad): the total derivative with eps held fixed and
// z moving with mu and logvar (dz/dmu = 1, dz/dc = 0.5 exp(0.5 c) eps). The
// log q term's direct and through-z parts cancel for mu and leave -0.5 for
// c; log p's give z and z * 0.5 exp(0.5 c) eps. Into dh [R, 2L],
// overwritten or added to (accumulate), as kl_rows_grad:
//   dmu = z * gscale
//   dlogvar = (0.5 z eps exp(0.5 c) - 0.5) * gscale where |logvar| <= C, else 0.

struct KlMcParams {
    rows: u32,
    l: u32,
    gscale: f32,
    accumulate: u32,
    clamp_c: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> kmp: KlMcParams;
@group(0) @binding(1) var<storage, read> km_h: array<f32>;
@group(0) @binding(2) var<storage, read> km_eps: array<f32>;
@group(0) @binding(3) var<storage, read> km_z: array<f32>;
@group(0) @binding(4) var<storage, read_write> km_row: array<f32>;
@group(0) @binding(5) var<storage, read_write> km_dh: array<f32>;

// Row sum of the estimate; hbase = r * 2L, ebase = r * L.
fn kl_mc_row_sum(lid: u32, hbase: u32, ebase: u32) -> f32 {
    var acc = 0.0;
    for (var j = lid; j < kmp.l; j = j + 256u) {
        let c = clamp(km_h[hbase + kmp.l + j], -kmp.clamp_c, kmp.clamp_c);
        let e = km_eps[ebase + j];
        let z = km_z[ebase + j];
        acc = acc + (0.5 * (z * z) - 0.5 * (e * e + c));
    }
    return wg_sum(lid, acc);
}

@compute @workgroup_size(256)
fn kl_mc_rows_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = wid.x + wid.y * nwg.x;
    if (r >= kmp.rows) { return; } // whole workgroup: uniform
    let hbase = r * 2u * kmp.l;
    let ebase = r * kmp.l;
    let s = kl_mc_row_sum(lid.x, hbase, ebase);
    for (var j = lid.x; j < kmp.l; j = j + 256u) {
        let lv = km_h[hbase + kmp.l + j];
        let c = clamp(lv, -kmp.clamp_c, kmp.clamp_c);
        let e = km_eps[ebase + j];
        let z = km_z[ebase + j];
        var gmu = z * kmp.gscale;
        let d = 0.5 * z * e * exp(0.5 * c) - 0.5;
        var glv = select(0.0, d * kmp.gscale, abs(lv) <= kmp.clamp_c);
        if (kmp.accumulate != 0u) {
            gmu = gmu + km_dh[hbase + j];
            glv = glv + km_dh[hbase + kmp.l + j];
        }
        km_dh[hbase + j] = gmu;
        km_dh[hbase + kmp.l + j] = glv;
    }
    if (lid.x == 0u) {
        km_row[r] = s;
    }
}

@compute @workgroup_size(256)
fn kl_mc_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = wid.x + wid.y * nwg.x;
    if (r >= kmp.rows) { return; }
    let s = kl_mc_row_sum(lid.x, r * 2u * kmp.l, r * kmp.l);
    if (lid.x == 0u) {
        km_row[r] = s;
    }
}
