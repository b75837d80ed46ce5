// Softmax cross-entropy (concatenated after wg_reduce.wgsl).
//
// logits [R, K], labels u32 [R]. One workgroup per row:
//   m = max_k x,  s = sum_k exp(x - m)           (stable: exp of <= 0 only)
//   row_loss[r] = log(s) + m - x[label]
//   grad = (exp(x - m) / s - onehot(label)) * gscale     (ce_rows_grad only)
// A label >= K writes NaN into row_loss (and the gradient row), so the bad
// batch shows up as a NaN loss in the ring, naming its step.

struct CeParams {
    rows: u32,
    k: u32,
    gscale: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> cp: CeParams;
@group(0) @binding(1) var<storage, read> c_x: array<f32>;
@group(0) @binding(2) var<storage, read> c_labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> c_row: array<f32>;
@group(0) @binding(4) var<storage, read_write> c_grad: array<f32>;

// A quiet NaN. WGSL has no NaN constants: a const-expression that evaluates
// to NaN is a shader-creation error (Tint: "value nan cannot be represented
// as 'f32'"; naga accepts it). `cp.k & 0u` is 0 but a runtime value,
// so the bitcast is evaluated when the kernel runs.
fn ce_nan() -> f32 {
    return bitcast<f32>(0x7fc00000u | (cp.k & 0u));
}

// Row max and sum of exp(x - max): two fixed-order workgroup reductions.
fn ce_stats(lid: u32, base: u32) -> vec2<f32> {
    var m = -3.0e38;
    for (var j = lid; j < cp.k; j = j + 256u) {
        m = max(m, c_x[base + j]);
    }
    let rm = wg_max(lid, m);
    var s = 0.0;
    for (var j = lid; j < cp.k; j = j + 256u) {
        s = s + exp(c_x[base + j] - rm);
    }
    return vec2<f32>(rm, wg_sum(lid, s));
}

@compute @workgroup_size(256)
fn ce_rows_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = wid.x + wid.y * nwg.x;
    if (r >= cp.rows) { return; } // whole workgroup: uniform
    let base = r * cp.k;
    let st = ce_stats(lid.x, base);
    let label = c_labels[r];
    let ok = label < cp.k;
    for (var j = lid.x; j < cp.k; j = j + 256u) {
        let pj = exp(c_x[base + j] - st.x) / st.y;
        let g = (pj - select(0.0, 1.0, j == label)) * cp.gscale;
        c_grad[base + j] = select(ce_nan(), g, ok);
    }
    if (lid.x == 0u) {
        let xl = c_x[base + min(label, cp.k - 1u)];
        c_row[r] = select(ce_nan(), log(st.y) + st.x - xl, ok);
    }
}

@compute @workgroup_size(256)
fn ce_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = wid.x + wid.y * nwg.x;
    if (r >= cp.rows) { return; }
    let base = r * cp.k;
    let st = ce_stats(lid.x, base);
    if (lid.x == 0u) {
        let label = c_labels[r];
        let xl = c_x[base + min(label, cp.k - 1u)];
        c_row[r] = select(ce_nan(), log(st.y) + st.x - xl, label < cp.k);
    }
}
