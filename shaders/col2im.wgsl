// Conv backward data (= transposed conv forward) for few input channels, by
// GEMM + col2im: the GEMM Z = dy W^T (Z[(n, oy, ox), (ky, kx, ci)] =
// sum_co dy[n, oy, ox, co] W[ky, kx, ci, co]) is wide (KH*KW*Cin columns)
// where the by-phases GEMM would have Cin, and this gather sums, for every
// input pixel, the taps that reach it:
//   dx[n, iy, ix, ci] = epilogue(sum_{ky, kx} Z[(n, oy, ox), (ky, kx, ci)])
//   over oy*s + ky - pad_y = iy, ox*s + kx - pad_x = ix, inside the output;
// ky, kx ascending (a fixed order); the epilogue (bias, activation, ...:
// src/ops/gemm/epilogue.rs, bindings from 3) is generated in front. One
// element per thread; 2-D grid past 65,535 workgroups.

struct Params {
    len: u32, h: u32, w: u32, cin: u32,
    oh: u32, ow: u32, kh: u32, kw: u32,
    stride: u32, pad_y: u32, pad_x: u32, pad: u32,
    {{EPI_PARAMS}}
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

fn gather(i: u32) -> f32 {
    let ci = i % p.cin;
    let pix = i / p.cin;
    let ix = pix % p.w;
    let rest = pix / p.w;
    let iy = rest % p.h;
    let n = rest / p.h;
    let s = i32(p.stride);
    let ncol = p.kh * p.kw * p.cin;
    var acc = 0.0;
    for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
        let ty = i32(iy + p.pad_y) - i32(ky);
        if ((ty < 0) | (ty % s != 0) | (u32(ty / s) >= p.oh)) { continue; }
        let row = (n * p.oh + u32(ty / s)) * p.ow;
        for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
            let tx = i32(ix + p.pad_x) - i32(kx);
            if ((tx < 0) | (tx % s != 0) | (u32(tx / s) >= p.ow)) { continue; }
            acc = acc + z[(row + u32(tx / s)) * ncol + (ky * p.kw + kx) * p.cin + ci];
        }
    }
    return acc;
}

fn index(wid: vec3<u32>, lid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return (wid.x + wid.y * nwg.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn col2im(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(wid, lid, nwg);
    if (i >= p.len) { return; }
    dx[i] = epilogue(i, i % p.cin, gather(i));
}
