// VAE reparameterisation (concatenated after philox.wgsl).
//
// h is the encoder's [N, 2L] output: row r holds mu (columns 0..L) then
// logvar (columns L..2L). One invocation per latent element e = r*L + j:
//   c = clamp(logvar, -C, C)            (C = logvar_clamp, see reparam.rs)
//   eps = normal draw of element e at this step (counter (e, counters[0], stream, 0))
//   z = mu + exp(0.5 c) * eps           eps is saved for the backward
// Backward, into dh [N, 2L] (overwritten):
//   dmu = dz,  dlogvar = dz * eps * 0.5 * exp(0.5 c) where |logvar| <= C, else 0.

struct ReparamParams {
    n: u32,         // N * L
    l: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    clamp_c: f32,
}

@group(0) @binding(0) var<uniform> rpp: ReparamParams;

// forward: counters, h, eps, z
@group(0) @binding(1) var<storage, read> rf_counters: array<u32>;
@group(0) @binding(2) var<storage, read> rf_h: array<f32>;
@group(0) @binding(3) var<storage, read_write> rf_eps: array<f32>;
@group(0) @binding(4) var<storage, read_write> rf_z: array<f32>;

// backward: h, eps, dz, dh
@group(0) @binding(1) var<storage, read> rb_h: array<f32>;
@group(0) @binding(2) var<storage, read> rb_eps: array<f32>;
@group(0) @binding(3) var<storage, read> rb_dz: array<f32>;
@group(0) @binding(4) var<storage, read_write> rb_dh: array<f32>;

// mean (eval): h, z
@group(0) @binding(1) var<storage, read> rm_h: array<f32>;
@group(0) @binding(2) var<storage, read_write> rm_z: array<f32>;

fn reparam_index(wid: vec3<u32>, lid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return (wid.x + wid.y * nwg.x) * 256u + lid.x;
}

// Index of mu for latent element e in h.
fn reparam_mu_at(e: u32) -> u32 {
    let r = e / rpp.l;
    return e + r * rpp.l;
}

@compute @workgroup_size(256)
fn reparam_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = reparam_index(wid, lid, nwg);
    if (e >= rpp.n) { return; }
    let m = reparam_mu_at(e);
    let mu = rf_h[m];
    let c = clamp(rf_h[m + rpp.l], -rpp.clamp_c, rpp.clamp_c);
    let w = philox_draw(e, rf_counters[0], rpp.stream, vec2<u32>(rpp.seed_lo, rpp.seed_hi));
    let eps = philox_normal(w);
    rf_eps[e] = eps;
    rf_z[e] = mu + exp(0.5 * c) * eps;
}

@compute @workgroup_size(256)
fn reparam_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = reparam_index(wid, lid, nwg);
    if (e >= rpp.n) { return; }
    let m = reparam_mu_at(e);
    let lv = rb_h[m + rpp.l];
    let c = clamp(lv, -rpp.clamp_c, rpp.clamp_c);
    let dz = rb_dz[e];
    rb_dh[m] = dz;
    rb_dh[m + rpp.l] = select(0.0, dz * rb_eps[e] * 0.5 * exp(0.5 * c), abs(lv) <= rpp.clamp_c);
}

@compute @workgroup_size(256)
fn reparam_mean(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = reparam_index(wid, lid, nwg);
    if (e >= rpp.n) { return; }
    rm_z[e] = rm_h[reparam_mu_at(e)];
}
