// Fill a tensor with Philox draws (concatenated after philox.wgsl).
//
// Element i of the output gets the Philox block for counter
// (i, counters[0], stream, 0) under key (seed_lo, seed_hi): word 0 as a u32,
// word 0 as a uniform in [0, 1), or words 0 and 1 as a Box-Muller normal.

struct RngParams {
    n: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
}

@group(0) @binding(0) var<uniform> rp: RngParams;
@group(0) @binding(1) var<storage, read> rng_counters: array<u32>;
@group(0) @binding(2) var<storage, read_write> out_u32: array<u32>;
@group(0) @binding(2) var<storage, read_write> out_f32: array<f32>;

fn rng_index(wid: vec3<u32>, lid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return (wid.x + wid.y * nwg.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn fill_u32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = rng_index(wid, lid, nwg);
    if (i >= rp.n) { return; }
    let w = philox_draw(i, rng_counters[0], rp.stream, vec2<u32>(rp.seed_lo, rp.seed_hi));
    out_u32[i] = w.x;
}

@compute @workgroup_size(256)
fn fill_uniform(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = rng_index(wid, lid, nwg);
    if (i >= rp.n) { return; }
    let w = philox_draw(i, rng_counters[0], rp.stream, vec2<u32>(rp.seed_lo, rp.seed_hi));
    out_f32[i] = philox_unit(w.x);
}

@compute @workgroup_size(256)
fn fill_normal(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = rng_index(wid, lid, nwg);
    if (i >= rp.n) { return; }
    let w = philox_draw(i, rng_counters[0], rp.stream, vec2<u32>(rp.seed_lo, rp.seed_hi));
    out_f32[i] = philox_normal(w);
}
