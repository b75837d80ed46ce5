// Inverted dropout (concatenated after philox.wgsl).
//
// Training forward: u = uniform draw of element i at this step (Philox
// counter (i, counters[0], stream, 0)); mask = 1/(1-p) where u >= p (kept),
// else 0; y = x * mask. The mask is saved: backward is dx = dy * mask.
// Eval: y = x (dropout_copy).

struct DropoutParams {
    n: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    p: f32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> dp: DropoutParams;

// forward: counters, x, mask, y
@group(0) @binding(1) var<storage, read> df_counters: array<u32>;
@group(0) @binding(2) var<storage, read> df_x: array<f32>;
@group(0) @binding(3) var<storage, read_write> df_mask: array<f32>;
@group(0) @binding(4) var<storage, read_write> df_y: array<f32>;

// backward: mask, dy, dx
@group(0) @binding(1) var<storage, read> db_mask: array<f32>;
@group(0) @binding(2) var<storage, read> db_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> db_dx: array<f32>;

// copy: x, y
@group(0) @binding(1) var<storage, read> dc_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> dc_y: array<f32>;

fn dropout_index(wid: vec3<u32>, lid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return (wid.x + wid.y * nwg.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn dropout_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = dropout_index(wid, lid, nwg);
    if (i >= dp.n) { return; }
    let w = philox_draw(i, df_counters[0], dp.stream, vec2<u32>(dp.seed_lo, dp.seed_hi));
    let m = select(0.0, dp.scale, philox_unit(w.x) >= dp.p);
    df_mask[i] = m;
    df_y[i] = df_x[i] * m;
}

@compute @workgroup_size(256)
fn dropout_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = dropout_index(wid, lid, nwg);
    if (i >= dp.n) { return; }
    db_dx[i] = db_dy[i] * db_mask[i];
}

@compute @workgroup_size(256)
fn dropout_copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = dropout_index(wid, lid, nwg);
    if (i >= dp.n) { return; }
    dc_y[i] = dc_x[i];
}
