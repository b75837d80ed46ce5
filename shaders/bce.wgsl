// Binary cross-entropy with logits (concatenated after wg_reduce.wgsl).
//
// x: logits [R, F], z: targets in [0, 1], same shape. One workgroup per row:
//   l = max(x, 0) - x z + log1p(exp(-|x|))     (finite for any x)
//   row_loss[r] = sum_f l                        (fixed-order tree)
//   grad = (sigmoid(x) - z) * gscale             (bce_rows_grad only)
// The scalar loss is a second pass (reduce_chunks) over row_loss.

struct BceParams {
    rows: u32,
    f: u32,
    gscale: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> bp: BceParams;
@group(0) @binding(1) var<storage, read> b_x: array<f32>;
@group(0) @binding(2) var<storage, read> b_z: array<f32>;
@group(0) @binding(3) var<storage, read_write> b_row: array<f32>;
@group(0) @binding(4) var<storage, read_write> b_grad: array<f32>;

// log(1 + e) for e in [0, 1], accurate for tiny e (Goldberg's trick: the
// rounding of 1 + e cancels in log(u) / (u - 1)).
fn bce_log1p(e: f32) -> f32 {
    let u = 1.0 + e;
    if (u == 1.0) {
        return e;
    }
    return log(u) * (e / (u - 1.0));
}

fn bce_elem(x: f32, z: f32) -> f32 {
    return max(x, 0.0) - x * z + bce_log1p(exp(-abs(x)));
}

// exp of a non-positive argument only: finite for any x.
fn bce_sigmoid(x: f32) -> f32 {
    let e = exp(-abs(x));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

@compute @workgroup_size(256)
fn bce_rows_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = wid.x + wid.y * nwg.x;
    if (r >= bp.rows) { return; } // whole workgroup: uniform
    let base = r * bp.f;
    var acc = 0.0;
    for (var j = lid.x; j < bp.f; j = j + 256u) {
        let x = b_x[base + j];
        let z = b_z[base + j];
        acc = acc + bce_elem(x, z);
        b_grad[base + j] = (bce_sigmoid(x) - z) * bp.gscale;
    }
    let s = wg_sum(lid.x, acc);
    if (lid.x == 0u) {
        b_row[r] = s;
    }
}

@compute @workgroup_size(256)
fn bce_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = wid.x + wid.y * nwg.x;
    if (r >= bp.rows) { return; }
    let base = r * bp.f;
    var acc = 0.0;
    for (var j = lid.x; j < bp.f; j = j + 256u) {
        acc = acc + bce_elem(b_x[base + j], b_z[base + j]);
    }
    let s = wg_sum(lid.x, acc);
    if (lid.x == 0u) {
        b_row[r] = s;
    }
}
