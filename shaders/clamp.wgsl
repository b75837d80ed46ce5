// Clamp in place: x[i] = clamp(x[i], -c, c), one element per thread (the
// WGAN's weight clipping). Written with comparisons and select rather than
// the clamp() builtin, whose result WGSL lets be either min(max(x, lo), hi)
// or the median of the three: here each element is x itself or exactly
// +-c, never rounded, so the result is the CPU reference's bit for bit.
// The grid may be 2-D past 65,535 workgroups.

struct ClampParams {
    n: u32,
    c: f32,
}

@group(0) @binding(0) var<uniform> cp: ClampParams;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn clamp_in_place(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lane;
    if (i >= cp.n) { return; }
    let v = x[i];
    let lo = -cp.c;
    x[i] = select(select(v, lo, v < lo), cp.c, v > cp.c);
}
