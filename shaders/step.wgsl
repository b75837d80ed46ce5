// Per-step state kept on the GPU, so several steps can share one submit.
//
// counters[0] is the number of steps completed. `advance` runs last in every
// step; `ring_write` copies a scalar loss into its ring slot for this step;
// step_end.wgsl does both for a training step's one or two losses, with
// their last reduction, in one dispatch.

struct Params {
    slot: u32,      // which loss of the step (0 .. slots)
    slots: u32,     // losses per step
    capacity: u32,  // steps the ring holds
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> counters: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> ring: array<f32>;

@compute @workgroup_size(1)
fn advance() {
    counters[0] = counters[0] + 1u;
}

@compute @workgroup_size(1)
fn ring_write() {
    let step = counters[0];
    ring[(step % p.capacity) * p.slots + p.slot] = src[0];
}

