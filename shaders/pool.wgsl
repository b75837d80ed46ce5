// Max pooling over NHWC activations, forward and backward.
//
// global_max_pool: [N, H, W, C] -> [N, C], one thread per (n, c).
// max_pool2x2:     [N, H, W, C] -> [N, H/2, W/2, C] (floor; a trailing odd
//                  row/column is dropped), stride 2, one thread per output.
// The forward saves the argmax as the flat index into x (u32) of the
// winning element; ties go to the first in row-major order (scan in
// increasing index, replace only on strictly greater). The backward gathers:
// one thread per INPUT element writes dy of its pooled output if it is that
// output's argmax, else 0. Every dx element is written, no atomics.
// The backward's dx goes through the epilogue (src/ops/epilogue.rs, which
// generates it and its bindings from 4 on: the saved dropout mask and the
// activation derivative of the layer before the pool). Grids may be 2-D
// past 65,535 workgroups.

struct Params {
    n: u32,   // threads: outputs (forward) or inputs (backward)
    h: u32,
    w: u32,
    c: u32,
    {{EPI_PARAMS}}
}

@group(0) @binding(0) var<uniform> p: Params;

// forward: x, y, argmax
@group(0) @binding(1) var<storage, read> fx: array<f32>;
@group(0) @binding(2) var<storage, read_write> fy: array<f32>;
@group(0) @binding(3) var<storage, read_write> farg: array<u32>;

// backward: argmax, dy, dx
@group(0) @binding(1) var<storage, read> barg: array<u32>;
@group(0) @binding(2) var<storage, read> bdy: array<f32>;
@group(0) @binding(3) var<storage, read_write> bdx: array<f32>;

fn index(wid: vec3<u32>, lane: u32, nwg: vec3<u32>) -> u32 {
    return (wid.x + wid.y * nwg.x) * 256u + lane;
}

@compute @workgroup_size(256)
fn global_max_pool_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = index(wid, lane, nwg);   // n * C + c
    if (o >= p.n) { return; }
    let c = o % p.c;
    let nb = o / p.c;
    let base = nb * p.h * p.w * p.c + c;
    var best = fx[base];
    var arg = base;
    let hw = p.h * p.w;
    for (var s = 1u; s < hw; s = s + 1u) {
        let i = base + s * p.c;
        let v = fx[i];
        if (v > best) {
            best = v;
            arg = i;
        }
    }
    fy[o] = best;
    farg[o] = arg;
}

@compute @workgroup_size(256)
fn global_max_pool_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(wid, lane, nwg);   // flat index into x
    if (i >= p.n) { return; }
    let c = i % p.c;
    let nb = i / (p.h * p.w * p.c);
    let o = nb * p.c + c;
    bdx[i] = epilogue(i, c, select(0.0, bdy[o], barg[o] == i));
}

@compute @workgroup_size(256)
fn max_pool2x2_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = index(wid, lane, nwg);   // ((n * OH + oh) * OW + ow) * C + c
    if (o >= p.n) { return; }
    let oh_n = p.h / 2u;
    let ow_n = p.w / 2u;
    let c = o % p.c;
    let ow = (o / p.c) % ow_n;
    let oh = (o / (p.c * ow_n)) % oh_n;
    let nb = o / (p.c * ow_n * oh_n);
    let i00 = ((nb * p.h + 2u * oh) * p.w + 2u * ow) * p.c + c;
    let i01 = i00 + p.c;
    let i10 = i00 + p.w * p.c;
    let i11 = i10 + p.c;
    var best = fx[i00];
    var arg = i00;
    if (fx[i01] > best) { best = fx[i01]; arg = i01; }
    if (fx[i10] > best) { best = fx[i10]; arg = i10; }
    if (fx[i11] > best) { best = fx[i11]; arg = i11; }
    fy[o] = best;
    farg[o] = arg;
}

@compute @workgroup_size(256)
fn max_pool2x2_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(wid, lane, nwg);   // ((n * H + h) * W + w) * C + c
    if (i >= p.n) { return; }
    let oh_n = p.h / 2u;
    let ow_n = p.w / 2u;
    let c = i % p.c;
    let w = (i / p.c) % p.w;
    let h = (i / (p.c * p.w)) % p.h;
    let nb = i / (p.c * p.w * p.h);
    let oh = h / 2u;
    let ow = w / 2u;
    var g = 0.0;
    if ((oh < oh_n) & (ow < ow_n)) {
        let o = ((nb * oh_n + oh) * ow_n + ow) * p.c + c;
        g = select(0.0, bdy[o], barg[o] == i);
    }
    bdx[i] = epilogue(i, c, g);
}
