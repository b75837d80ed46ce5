// Workgroup tree reductions over 256 invocations, in a fixed order.
//
// A snippet: Rust concatenates it in front of the kernel files that reduce
// (reduce, bce, softmax_ce, kl). Every invocation of the workgroup must call
// these in uniform control flow (they contain barriers); each returns the
// workgroup's result to every invocation. Same inputs, same bits: the tree
// shape never changes and there are no atomics.

var<workgroup> wg_red: array<f32, 256>;

fn wg_sum(lid: u32, v: f32) -> f32 {
    wg_red[lid] = v;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            wg_red[lid] = wg_red[lid] + wg_red[lid + s];
        }
        workgroupBarrier();
    }
    let r = wg_red[0];
    workgroupBarrier(); // everyone has read before the next call overwrites
    return r;
}

fn wg_max(lid: u32, v: f32) -> f32 {
    wg_red[lid] = v;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            wg_red[lid] = max(wg_red[lid], wg_red[lid + s]);
        }
        workgroupBarrier();
    }
    let r = wg_red[0];
    workgroupBarrier();
    return r;
}
