// Deterministic sums (concatenated after wg_reduce.wgsl).
//
// reduce_chunks: workgroup g sums x[g*chunk .. min((g+1)*chunk, n)] and
// writes the sum times `scale` to out[g]. Each of the 256 invocations adds
// the elements lid, lid+256, ... of the chunk in order; then the fixed tree.
// Per-row sums of [R, F] are chunk = F; a full sum is a first pass with
// chunk = 4096 into partials and a second pass with one chunk over them.

struct ReduceParams {
    n: u32,
    chunk: u32,
    scale: f32,
    groups: u32,   // ceil(n / chunk): workgroups past it (2-D grid spill) exit
}

@group(0) @binding(0) var<uniform> rdp: ReduceParams;
@group(0) @binding(1) var<storage, read> rd_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> rd_out: array<f32>;

@compute @workgroup_size(256)
fn reduce_chunks(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= rdp.groups) { return; } // whole workgroup: uniform
    let begin = g * rdp.chunk;
    let end = min(begin + rdp.chunk, rdp.n);
    var acc = 0.0;
    for (var i = begin + lid.x; i < end; i = i + 256u) {
        acc = acc + rd_x[i];
    }
    let s = wg_sum(lid.x, acc);
    if (lid.x == 0u) {
        rd_out[g] = s * rdp.scale;
    }
}
