// A loss of logits x against targets t, per row (concatenated after
// wg_reduce.wgsl, in front of the loss's own file, which defines
//   fn loss_elem(x: f32, t: f32) -> vec2<f32>    // (loss, d loss / d x)
// : least_squares, hinge, linear_loss).
//
// x, t: [R, F]. One workgroup per row:
//   row_loss[r] = sum_f loss_elem(x, t).x         (fixed-order tree)
//   grad        = loss_elem(x, t).y * gscale
// The scalar loss is a second pass over row_loss (the step's end kernel).

struct TargetParams {
    rows: u32,
    f: u32,
    gscale: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> tp: TargetParams;
@group(0) @binding(1) var<storage, read> t_x: array<f32>;
@group(0) @binding(2) var<storage, read> t_t: array<f32>;
@group(0) @binding(3) var<storage, read_write> t_row: array<f32>;
@group(0) @binding(4) var<storage, read_write> t_grad: array<f32>;

@compute @workgroup_size(256)
fn target_rows_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = wid.x + wid.y * nwg.x;
    if (r >= tp.rows) { return; } // whole workgroup: uniform
    let base = r * tp.f;
    var acc = 0.0;
    for (var j = lid.x; j < tp.f; j = j + 256u) {
        let l = loss_elem(t_x[base + j], t_t[base + j]);
        acc = acc + l.x;
        t_grad[base + j] = l.y * tp.gscale;
    }
    let s = wg_sum(lid.x, acc);
    if (lid.x == 0u) {
        t_row[r] = s;
    }
}
