// Pointwise activations, forward and backward, one element per thread.
//
// Forward:  y = f(x).
// Backward: dx = dy * f'(.), where f' is computed from x (relu, leaky_relu)
// or from the saved output y (sigmoid: y(1-y), tanh: 1-y^2), whichever the
// layer keeps. The grid may be 2-D past 65,535 workgroups. Concatenated
// after activations.wgsl (act_sigmoid, act_tanh).

struct Params {
    n: u32,
    alpha: f32,   // leaky_relu negative slope
}

@group(0) @binding(0) var<uniform> p: Params;

// forward bindings
@group(0) @binding(1) var<storage, read> fx: array<f32>;
@group(0) @binding(2) var<storage, read_write> fy: array<f32>;

// backward bindings: saved (x or y), dy, dx
@group(0) @binding(1) var<storage, read> bsaved: array<f32>;
@group(0) @binding(2) var<storage, read> bdy: array<f32>;
@group(0) @binding(3) var<storage, read_write> bdx: array<f32>;

fn index(wid: vec3<u32>, lid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return (wid.x + wid.y * nwg.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn relu_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(wid, lid, nwg);
    if (i >= p.n) { return; }
    fy[i] = max(fx[i], 0.0);
}

@compute @workgroup_size(256)
fn relu_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(wid, lid, nwg);
    if (i >= p.n) { return; }
    bdx[i] = select(0.0, bdy[i], bsaved[i] > 0.0);
}

@compute @workgroup_size(256)
fn leaky_relu_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(wid, lid, nwg);
    if (i >= p.n) { return; }
    let x = fx[i];
    fy[i] = select(p.alpha * x, x, x > 0.0);
}

@compute @workgroup_size(256)
fn leaky_relu_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(wid, lid, nwg);
    if (i >= p.n) { return; }
    bdx[i] = select(p.alpha * bdy[i], bdy[i], bsaved[i] > 0.0);
}

@compute @workgroup_size(256)
fn sigmoid_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(wid, lid, nwg);
    if (i >= p.n) { return; }
    fy[i] = act_sigmoid(fx[i]);
}

@compute @workgroup_size(256)
fn sigmoid_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(wid, lid, nwg);
    if (i >= p.n) { return; }
    let y = bsaved[i];
    bdx[i] = bdy[i] * y * (1.0 - y);
}

@compute @workgroup_size(256)
fn tanh_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(wid, lid, nwg);
    if (i >= p.n) { return; }
    fy[i] = act_tanh(fx[i]);
}

@compute @workgroup_size(256)
fn tanh_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(wid, lid, nwg);
    if (i >= p.n) { return; }
    let y = bsaved[i];
    bdx[i] = bdy[i] * (1.0 - y * y);
}
