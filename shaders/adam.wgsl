// Adam, one element per thread, in place on p, m, v.
//
//   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2;
//   Keras   (mode 0): p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
//   PyTorch (mode 1): p -= lr * mhat / (sqrt(vhat) + eps),
//                     mhat = m / (1 - b1^t), vhat = v / (1 - b2^t)
//
// The step t = counters[0] + 1 is read HERE, from the GPU step counter
// (bound as storage), never from a uniform: several steps recorded into one
// submit each see their own t, since `advance` bumps the counter last in
// every step. b^t is computed by binary exponentiation in f32 (at most ~2
// log2(t) roundings, deterministic), not by pow(), whose exp2/log2 error
// bounds are loose for b close to 1.

struct Params {
    n: u32,
    mode: u32,   // 0 Keras, 1 PyTorch
    lr: f32,
    b1: f32,
    b2: f32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> counters: array<u32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read_write> m1: array<f32>;
@group(0) @binding(5) var<storage, read_write> m2: array<f32>;

// b^t by squaring: exact loop bound (32 bits of t).
fn powu(b: f32, t: u32) -> f32 {
    var r = 1.0;
    var s = b;
    var e = t;
    for (var k = 0u; k < 32u; k = k + 1u) {
        if ((e & 1u) != 0u) {
            r = r * s;
        }
        e = e >> 1u;
        if (e == 0u) {
            break;
        }
        s = s * s;
    }
    return r;
}

@compute @workgroup_size(256)
fn adam_update(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lane;
    if (i >= p.n) { return; }
    let t = counters[0] + 1u;
    let c1 = 1.0 - powu(p.b1, t);
    let c2 = 1.0 - powu(p.b2, t);
    let g = grad[i];
    let m = p.b1 * m1[i] + (1.0 - p.b1) * g;
    let v = p.b2 * m2[i] + (1.0 - p.b2) * g * g;
    m1[i] = m;
    m2[i] = v;
    var upd: f32;
    if (p.mode == 0u) {
        upd = p.lr * sqrt(c2) / c1 * m / (sqrt(v) + p.eps);
    } else {
        upd = p.lr * (m / c1) / (sqrt(v / c2) + p.eps);
    }
    param[i] = param[i] - upd;
}
