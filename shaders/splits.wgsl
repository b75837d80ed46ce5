// Fixed-order reductions (no float atomics): the same inputs give the same
// bits on every run.
//
// reduce_splits:       out[i] = epilogue(i, i % ncols, sum_{s < nsplit} part[s * len + i])  (s ascending)
// bias_grad_partial:   part[s * ncols + c] = sum_{r in chunk s} dy[r * ncols + c]  (r ascending)
//
// split-K GEMMs write nsplit partial outputs, summed here; the bias gradient
// sums rows in nsplit fixed chunks, then reduce_splits sums the chunks.
// The epilogue (bias, activation, dropout, derivative: src/ops/gemm/
// epilogue.rs, which generates it and its bindings from 3 on) is the one the
// GEMM would have applied without split-K. One element per thread; the grid
// may be 2-D past 65,535 workgroups.

struct Params {
    len: u32,
    nsplit: u32,
    ncols: u32,
    rows: u32,
    chunk: u32,
    pad0: u32, pad1: u32, pad2: u32,
    {{EPI_PARAMS}}
}

@group(0) @binding(0) var<uniform> p: Params;

@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;

fn index(wid: vec3<u32>, lid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return (wid.x + wid.y * nwg.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn reduce_splits(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(wid, lid, nwg);
    if (i >= p.len) { return; }
    var acc = 0.0;
    for (var s = 0u; s < p.nsplit; s = s + 1u) {
        acc = acc + part[s * p.len + i];
    }
    out[i] = epilogue(i, i % p.ncols, acc);
}

@compute @workgroup_size(256)
fn bias_grad_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(wid, lid, nwg);
    if (i >= p.nsplit * p.ncols) { return; }
    let s = i / p.ncols;
    let c = i % p.ncols;
    let r0 = s * p.chunk;
    let r1 = min(p.rows, r0 + p.chunk);
    var acc = 0.0;
    for (var r = r0; r < r1; r = r + 1u) {
        acc = acc + dy[r * p.ncols + c];
    }
    partial[i] = acc;
}
