// The end of a training step, in one dispatch (concatenated after
// wg_reduce.wgsl): each loss of the step is the sum of its per-sample rows
// times a factor, summed as reduce.wgsl's reduce_chunks sums one chunk
// (invocation i adds rows i, i + 256, ... in order, then the fixed tree: the
// same bits), written to its ring slot; then the counter advances. Only
// invocation 0 touches the counter and the ring, so no invocation can read
// the counter after it moved.
struct EndParams {
    slots: u32,
    capacity: u32,
    n0: u32,
    slot0: u32,
    scale0: f32,
    n1: u32,
    slot1: u32,
    scale1: f32,
}

@group(0) @binding(0) var<uniform> ep: EndParams;
@group(0) @binding(1) var<storage, read_write> end_counters: array<u32>;
@group(0) @binding(2) var<storage, read_write> end_ring: array<f32>;
@group(0) @binding(3) var<storage, read> rows0: array<f32>;
@group(0) @binding(4) var<storage, read> rows1: array<f32>;

fn row_sum0(lid: u32) -> f32 {
    var acc = 0.0;
    for (var i = lid; i < ep.n0; i = i + 256u) {
        acc = acc + rows0[i];
    }
    return wg_sum(lid, acc);
}

fn row_sum1(lid: u32) -> f32 {
    var acc = 0.0;
    for (var i = lid; i < ep.n1; i = i + 256u) {
        acc = acc + rows1[i];
    }
    return wg_sum(lid, acc);
}

@compute @workgroup_size(256)
fn step_end1(@builtin(local_invocation_index) lid: u32) {
    let s0 = row_sum0(lid);
    if (lid == 0u) {
        let row = (end_counters[0] % ep.capacity) * ep.slots;
        end_ring[row + ep.slot0] = s0 * ep.scale0;
        end_counters[0] = end_counters[0] + 1u;
    }
}

@compute @workgroup_size(256)
fn step_end2(@builtin(local_invocation_index) lid: u32) {
    let s0 = row_sum0(lid);
    let s1 = row_sum1(lid);
    if (lid == 0u) {
        let row = (end_counters[0] % ep.capacity) * ep.slots;
        end_ring[row + ep.slot0] = s0 * ep.scale0;
        end_ring[row + ep.slot1] = s1 * ep.scale1;
        end_counters[0] = end_counters[0] + 1u;
    }
}
