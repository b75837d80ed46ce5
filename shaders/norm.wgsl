// Batch normalisation over the last dimension: the input is viewed as
// [R, C] (NHWC activations: R = N*H*W rows, one statistic per channel;
// dense [N, F]: R = N). One kernel family serves both.
//
// Training forward (3 dispatches; 2 when the rows make one chunk:
// bn_stats_single, then bn_apply):
//   bn_stats_partial   per (channel tile, row chunk): shifted sums
//                      sum(x - k), sum((x - k)^2) with k = x[0, c]
//                      (the shift keeps the one-pass variance well
//                      conditioned when |mean| >> std);
//   bn_stats_finalize  per channel: sums the chunks IN ORDER, writes the
//                      batch mean and inv_std = 1/sqrt(var + eps) (biased
//                      variance) and updates the running averages;
//   bn_apply           per element: y = gamma * (x - mean) * inv_std + beta,
//                      then the ReLU or LeakyReLU that follows, if any.
// Eval forward: bn_apply alone, from the running mean and variance.
// Backward (3 dispatches; 2 with one chunk: bn_grad_single, then
// bn_backward_dx): bn_grad_partial + bn_grad_finalize give
//   dbeta = sum(dy), dgamma = sum(dy * xhat); bn_backward_dx per element:
//   dx = gamma * inv_std / R * (R dy - dbeta - xhat * dgamma).
//
// Every reduction has a fixed order (per-thread strided loop, fixed tree
// over the RT row lanes, sequential over the chunks): no atomics, same bits
// on every run. CT (channels per workgroup) and RT (row lanes) are
// prepended by Rust; CT * RT = 256 and RT is a power of two.

struct Params {
    rows: u32,        // R
    channels: u32,    // C
    chunks: u32,      // P: row chunks of the partial sums
    chunk_rows: u32,  // rows per chunk
    eps: f32,
    momentum: f32,
    flag: u32,        // finalize: update running stats; apply: `scale` is a variance
    n: u32,           // R * C
    act: u32,         // apply: 0 none, 1 ReLU, 2 LeakyReLU(alpha) on y (fused)
    alpha: f32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// bn_stats_partial: x, partials [2, P, C]
@group(0) @binding(1) var<storage, read> sp_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> sp_part: array<f32>;

// bn_stats_finalize: partials, x, running_mean, running_var, save_mean, save_inv_std
@group(0) @binding(1) var<storage, read> sf_part: array<f32>;
@group(0) @binding(2) var<storage, read> sf_x: array<f32>;
@group(0) @binding(3) var<storage, read_write> sf_rmean: array<f32>;
@group(0) @binding(4) var<storage, read_write> sf_rvar: array<f32>;
@group(0) @binding(5) var<storage, read_write> sf_mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> sf_inv: array<f32>;

// bn_apply: x, mean, scale (inv_std, or a variance when flag = 1), gamma, beta, y
@group(0) @binding(1) var<storage, read> ap_x: array<f32>;
@group(0) @binding(2) var<storage, read> ap_mean: array<f32>;
@group(0) @binding(3) var<storage, read> ap_scale: array<f32>;
@group(0) @binding(4) var<storage, read> ap_gamma: array<f32>;
@group(0) @binding(5) var<storage, read> ap_beta: array<f32>;
@group(0) @binding(6) var<storage, read_write> ap_y: array<f32>;

// bn_grad_partial: x, dy, mean, inv_std, partials [2, P, C]
@group(0) @binding(1) var<storage, read> gp_x: array<f32>;
@group(0) @binding(2) var<storage, read> gp_dy: array<f32>;
@group(0) @binding(3) var<storage, read> gp_mean: array<f32>;
@group(0) @binding(4) var<storage, read> gp_inv: array<f32>;
@group(0) @binding(5) var<storage, read_write> gp_part: array<f32>;

// bn_grad_single: x, dy, mean, inv_std (as bn_grad_partial), dgamma, dbeta
@group(0) @binding(5) var<storage, read_write> gs_dgamma: array<f32>;
@group(0) @binding(6) var<storage, read_write> gs_dbeta: array<f32>;

// bn_grad_finalize: partials, dgamma, dbeta
@group(0) @binding(1) var<storage, read> gf_part: array<f32>;
@group(0) @binding(2) var<storage, read_write> gf_dgamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> gf_dbeta: array<f32>;

// bn_backward_dx: x, dy, mean, inv_std, gamma, dgamma, dbeta, dx
@group(0) @binding(1) var<storage, read> bx_x: array<f32>;
@group(0) @binding(2) var<storage, read> bx_dy: array<f32>;
@group(0) @binding(3) var<storage, read> bx_mean: array<f32>;
@group(0) @binding(4) var<storage, read> bx_inv: array<f32>;
@group(0) @binding(5) var<storage, read> bx_gamma: array<f32>;
@group(0) @binding(6) var<storage, read> bx_dgamma: array<f32>;
@group(0) @binding(7) var<storage, read> bx_dbeta: array<f32>;
@group(0) @binding(8) var<storage, read_write> bx_dx: array<f32>;

var<workgroup> red_a: array<f32, 256>;
var<workgroup> red_b: array<f32, 256>;

// Sum red_a/red_b over the RT row lanes into lane 0, fixed tree order.
// Called from uniform control flow by every thread of the workgroup.
fn reduce_rows(lane: u32) {
    workgroupBarrier();
    for (var s = RT / 2u; s > 0u; s = s / 2u) {
        let ry = lane / CT;
        if (ry < s) {
            red_a[lane] = red_a[lane] + red_a[lane + s * CT];
            red_b[lane] = red_b[lane] + red_b[lane + s * CT];
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(256)
fn bn_stats_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let cx = lane % CT;
    let ry = lane / CT;
    let c = wid.x * CT + cx;
    let chunk = wid.y;
    let r0 = chunk * p.chunk_rows;
    let r1 = min(r0 + p.chunk_rows, p.rows);
    var a = 0.0;
    var b = 0.0;
    if (c < p.channels) {
        let k = sp_x[c];
        for (var r = r0 + ry; r < r1; r = r + RT) {
            let d = sp_x[r * p.channels + c] - k;
            a = a + d;
            b = b + d * d;
        }
    }
    red_a[lane] = a;
    red_b[lane] = b;
    reduce_rows(lane);
    if ((ry == 0u) & (c < p.channels)) {
        sp_part[chunk * p.channels + c] = red_a[cx];
        sp_part[(p.chunks + chunk) * p.channels + c] = red_b[cx];
    }
}

// The batch statistics of channel c from its shifted sums a, b over all
// rows: mean and inv_std saved, running averages updated (flag = 1).
fn finalize_stats(c: u32, a: f32, b: f32) {
    let rn = f32(p.rows);
    let shift = a / rn;
    let var_b = max(b / rn - shift * shift, 0.0);
    let mean = sf_x[c] + shift;
    sf_mean[c] = mean;
    sf_inv[c] = 1.0 / sqrt(var_b + p.eps);
    if (p.flag == 1u) {
        sf_rmean[c] = p.momentum * sf_rmean[c] + (1.0 - p.momentum) * mean;
        sf_rvar[c] = p.momentum * sf_rvar[c] + (1.0 - p.momentum) * var_b;
    }
}

@compute @workgroup_size(256)
fn bn_stats_finalize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let c = wid.x * 256u + lane;
    if (c >= p.channels) { return; }
    var a = 0.0;
    var b = 0.0;
    for (var q = 0u; q < p.chunks; q = q + 1u) {
        a = a + sf_part[q * p.channels + c];
        b = b + sf_part[(p.chunks + q) * p.channels + c];
    }
    finalize_stats(c, a, b);
}

// One row chunk (chunks = 1): bn_stats_partial's sums and the finalize in
// one dispatch, with the finalize's bindings. The same bits as the two:
// the finalize's sum of one chunk is 0 + that chunk's sum.
@compute @workgroup_size(256)
fn bn_stats_single(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let cx = lane % CT;
    let ry = lane / CT;
    let c = wid.x * CT + cx;
    var a = 0.0;
    var b = 0.0;
    if (c < p.channels) {
        let k = sf_x[c];
        for (var r = ry; r < p.rows; r = r + RT) {
            let d = sf_x[r * p.channels + c] - k;
            a = a + d;
            b = b + d * d;
        }
    }
    red_a[lane] = a;
    red_b[lane] = b;
    reduce_rows(lane);
    if ((ry == 0u) & (c < p.channels)) {
        finalize_stats(c, 0.0 + red_a[cx], 0.0 + red_b[cx]);
    }
}

@compute @workgroup_size(256)
fn bn_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lane;
    if (i >= p.n) { return; }
    let c = i % p.channels;
    var inv = ap_scale[c];
    if (p.flag == 1u) {
        inv = 1.0 / sqrt(inv + p.eps);
    }
    var y = ap_gamma[c] * ((ap_x[i] - ap_mean[c]) * inv) + ap_beta[c];
    // the activation that follows, as elementwise.wgsl computes it
    if (p.act == 1u) {
        y = max(y, 0.0);
    } else if (p.act == 2u) {
        y = select(p.alpha * y, y, y > 0.0);
    }
    ap_y[i] = y;
}

@compute @workgroup_size(256)
fn bn_grad_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let cx = lane % CT;
    let ry = lane / CT;
    let c = wid.x * CT + cx;
    let chunk = wid.y;
    let r0 = chunk * p.chunk_rows;
    let r1 = min(r0 + p.chunk_rows, p.rows);
    var a = 0.0;
    var b = 0.0;
    if (c < p.channels) {
        let mean = gp_mean[c];
        let inv = gp_inv[c];
        for (var r = r0 + ry; r < r1; r = r + RT) {
            let i = r * p.channels + c;
            let g = gp_dy[i];
            a = a + g;
            b = b + g * ((gp_x[i] - mean) * inv);
        }
    }
    red_a[lane] = a;
    red_b[lane] = b;
    reduce_rows(lane);
    if ((ry == 0u) & (c < p.channels)) {
        gp_part[chunk * p.channels + c] = red_a[cx];
        gp_part[(p.chunks + chunk) * p.channels + c] = red_b[cx];
    }
}

@compute @workgroup_size(256)
fn bn_grad_finalize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let c = wid.x * 256u + lane;
    if (c >= p.channels) { return; }
    var a = 0.0;
    var b = 0.0;
    for (var q = 0u; q < p.chunks; q = q + 1u) {
        a = a + gf_part[q * p.channels + c];
        b = b + gf_part[(p.chunks + q) * p.channels + c];
    }
    gf_dbeta[c] = a;
    gf_dgamma[c] = b;
}

// One row chunk (chunks = 1): bn_grad_partial's sums written as the
// gradients directly (the finalize's sum of one chunk is 0 + it).
@compute @workgroup_size(256)
fn bn_grad_single(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let cx = lane % CT;
    let ry = lane / CT;
    let c = wid.x * CT + cx;
    var a = 0.0;
    var b = 0.0;
    if (c < p.channels) {
        let mean = gp_mean[c];
        let inv = gp_inv[c];
        for (var r = ry; r < p.rows; r = r + RT) {
            let i = r * p.channels + c;
            let g = gp_dy[i];
            a = a + g;
            b = b + g * ((gp_x[i] - mean) * inv);
        }
    }
    red_a[lane] = a;
    red_b[lane] = b;
    reduce_rows(lane);
    if ((ry == 0u) & (c < p.channels)) {
        gs_dbeta[c] = 0.0 + red_a[cx];
        gs_dgamma[c] = 0.0 + red_b[cx];
    }
}

@compute @workgroup_size(256)
fn bn_backward_dx(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lane;
    if (i >= p.n) { return; }
    let c = i % p.channels;
    let inv = bx_inv[c];
    let xhat = (bx_x[i] - bx_mean[c]) * inv;
    let rn = f32(p.rows);
    bx_dx[i] = bx_gamma[c] * inv / rn * (rn * bx_dy[i] - bx_dbeta[c] - xhat * bx_dgamma[c]);
}
