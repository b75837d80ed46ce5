// Batch gathering from the dataset kept on the GPU as packed bytes.
//
// The dataset (n images of `item` bytes, four bytes per u32 word) is
// uploaded once; each epoch uploads a permutation of image indices. Step k
// of an epoch takes batch `(counters[0] % steps_per_epoch) * stride + offset`
// of it, so several steps in one submit read consecutive batches (stride 1,
// offset 0), or, for a step that reads `stride` batches (the Wasserstein
// GAN's critic iterations), its `offset`-th.
//
// pixels: out[b, p] = binarize ? f32(byte > threshold) * scale + shift
//                              : byte / 255 * scale + shift
// labels: out[b]    = label byte of the same image.
// gather_pixels_normals (concatenated after philox.wgsl): the pixels, and
// in the threads past them z[j] = the Philox normal of element j at this
// step (exactly what rng.wgsl's fill_normal writes): a GAN step's two
// inputs in one dispatch.

struct Params {
    batch: u32,
    item: u32,             // bytes per image (784)
    steps_per_epoch: u32,
    binarize: u32,         // 0 or 1
    scale: f32,
    shift: f32,
    threshold: u32,        // byte value; pixels strictly above it become 1
    z_n: u32,              // gather_pixels_normals: normals drawn into z
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    stride: u32,           // batches per step (1: one)
    offset: u32,           // which of them, < stride
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> counters: array<u32>;
@group(0) @binding(2) var<storage, read> perm: array<u32>;
@group(0) @binding(3) var<storage, read> bytes: array<u32>;
@group(0) @binding(4) var<storage, read_write> out_pixels: array<f32>;
@group(0) @binding(4) var<storage, read_write> out_labels: array<u32>;
@group(0) @binding(5) var<storage, read_write> out_z: array<f32>;

fn byte_at(i: u32) -> u32 {
    return (bytes[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu;
}

fn image_of(b: u32) -> u32 {
    let batch_index = (counters[0] % p.steps_per_epoch) * p.stride + p.offset;
    return perm[batch_index * p.batch + b];
}

fn pixel(i: u32) -> f32 {
    let b = i / p.item;
    let px = i % p.item;
    let v = byte_at(image_of(b) * p.item + px);
    var x: f32;
    if (p.binarize != 0u) {
        x = select(0.0, 1.0, v > p.threshold);
    } else {
        x = f32(v) / 255.0;
    }
    return x * p.scale + p.shift;
}

@compute @workgroup_size(256)
fn gather_pixels(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid.x;
    if (i >= p.batch * p.item) { return; }
    out_pixels[i] = pixel(i);
}

@compute @workgroup_size(256)
fn gather_labels(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = (wid.x + wid.y * nwg.x) * 256u + lid.x;
    if (b >= p.batch) { return; }
    out_labels[b] = byte_at(image_of(b));
}

@compute @workgroup_size(256)
fn gather_pixels_normals(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid.x;
    let n = p.batch * p.item;
    if (i < n) {
        out_pixels[i] = pixel(i);
    } else if (i - n < p.z_n) {
        let j = i - n;
        let w = philox_draw(j, counters[0], p.stream, vec2<u32>(p.seed_lo, p.seed_hi));
        out_z[j] = philox_normal(w);
    }
}
