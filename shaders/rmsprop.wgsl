// RMSProp (PyTorch's torch.optim.RMSprop, not centered, no momentum, no
// weight decay), one element per thread, in place on p and square_avg:
//
//   v = alpha v + (1 - alpha) g^2;   p -= lr * g / (sqrt(v) + eps)
//
// (v is PyTorch's `square_avg`.) No step counter and no bias correction:
// the update depends on the stored state alone, so N steps recorded into
// one submit equal N submits. The grid may be 2-D past 65,535 workgroups.

struct Params {
    n: u32,
    lr: f32,
    alpha: f32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read_write> square_avg: array<f32>;

@compute @workgroup_size(256)
fn rmsprop_update(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lane;
    if (i >= p.n) { return; }
    let g = grad[i];
    let v = p.alpha * square_avg[i] + (1.0 - p.alpha) * g * g;
    square_avg[i] = v;
    // PyTorch: param.addcdiv_(grad, sqrt(square_avg) + eps, value=-lr)
    param[i] = param[i] - p.lr * (g / (sqrt(v) + p.eps));
}
