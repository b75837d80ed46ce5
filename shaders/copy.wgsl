// Copy of 4-byte words into a sub-range of a larger tensor:
// dst[offset + i] = src[i] for i < n. Words are moved as u32, so any 4-byte
// dtype (f32 bit patterns included, NaN payloads too) is copied exactly.
// The grid may be 2-D past 65,535 workgroups.

struct CopyParams {
    n: u32,
    offset: u32,
}

@group(0) @binding(0) var<uniform> cp: CopyParams;
@group(0) @binding(1) var<storage, read> c_src: array<u32>;
@group(0) @binding(2) var<storage, read_write> c_dst: array<u32>;

@compute @workgroup_size(256)
fn copy_into(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid.x;
    if (i >= cp.n) { return; }
    c_dst[cp.offset + i] = c_src[i];
}
