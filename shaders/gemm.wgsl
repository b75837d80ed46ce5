// The register-tiled GEMM template and its index-function sections.
//
// This file is NOT compiled as it is: `src/ops/gemm/codegen.rs` cuts it into the
// sections marked `//! section NAME`, and builds one kernel per variant as
//   tile constants (BM, BN, BK, TM, TN, NT) + `common` + the variant's
//   sections (setup, A-load, B-load, C-row, C-store) + `main`,
// where `main`'s `{{...}}` placeholders are replaced by unrolled code
// generated in Rust (naga bounds every loop, which stops drivers unrolling).
//
// The GEMM is C[m, n] = sum_k A(m, k) B(k, n) over a K range [kbeg, kend)
// (one split of split-K). A workgroup computes a BM x BN block of C; each of
// its NT = (BM/TM)(BN/TN) invocations a TM x TN block held in registers.
// K advances BK at a time through workgroup memory (As: BK x BM, Bs: BK x BN).
// Each variant supplies:
//   fn setup(z) -> Dims      the GEMM sizes M, N, K of slice z (z = workgroup_id.z,
//                            the stride phase), and any per-slice geometry the
//                            index functions read
//   struct ARow, fn a_row(m); struct AK, fn a_k(k); fn load_a(ARow, AK)
//                            A(m, k), 0 when m >= M (the ARow says so)
//   struct BCol, fn b_col(n); struct BKI, fn b_k(k); fn load_b(BCol, BKI)
//                            B(k, n), 0 when n >= N
//   fn c_row(split, m), fn store_c(row, n, v)   where C(m, n) goes (m < M, n < N)
// The row part (ARow, BCol) is computed once per thread before the K loop,
// the k part (AK, BKI) once per loaded k: the generated loads are either
// "k-major" (consecutive invocations along k, one a_k per K step, several
// rows) or "m-major" (consecutive invocations along m, one row, several k),
// chosen in Rust per variant to follow the operand's contiguous axis.
// Callers of load_a/load_b guarantee k < kend <= K, except the subgroup main,
// which reads past kend and discards the value.
//
// No branches in what the K loop inlines: every load_a / load_b is a select
// of a load at a select-ed index (element 0 when the row, column or tap is
// outside; the value then discarded), never an `if`, and bools combine with
// `&` and `|`, never `&&` and `||` (naga makes each of those a branch). A
// K step inlines TM + TN loads; SwiftShader's compiler took time and memory
// exponential in the branches of a loop body (docs/ARCHITECTURE.md, Kernel
// rules).
//
// Uniformity: the barriers of the tiled main sit in a loop over
// [kbeg, kend) after an exit on `ok`, so those must be provably
// workgroup-uniform (WGSL's uniformity analysis, which Tint enforces and
// naga does not). They derive from setup's return value, computed from
// workgroup_id.z and the uniform block only. Module-scope `var<private>`
// reads count as non-uniform, so no private may feed them: the privates a
// variant's setup writes are read by the index functions only (data, not
// control flow around a barrier).

//! section common
// The GEMM sizes of one slice.
struct Dims { m: u32, n: u32, k: u32 }

struct Params {
    m: u32, n: u32, k: u32, ksplit: u32,
    tiles_m: u32, tiles_n: u32, nsplit: u32, batch: u32,
    h: u32, w: u32, cin: u32, oh: u32,
    ow: u32, cout: u32, kh: u32, kw: u32,
    stride: u32, pad_y: u32, pad_x: u32, split_stride: u32,
    bias_cols: u32, bias_rows: u32, pad0: u32, pad1: u32,
    {{EPI_PARAMS}}
}

@group(0) @binding(0) var<uniform> p: Params;

// floor(a / b) for 0 < b and a < 2^24 (record() refuses K >= 2^24): the
// index split of k inside the K loop. Integer division is no vector
// instruction on CPUs (lavapipe runs it lane by lane, ~25 cycles each); the
// f32 quotient of two exact operands, one rounding, is within 1 of a / b
// below 2^24, and one correction step makes it exact.
fn udiv(a: u32, b: u32) -> u32 {
    let q = i32(f32(a) / f32(b));
    let r = i32(a) - q * i32(b);
    return u32(q - select(0, 1, r < 0) + select(0, 1, r >= i32(b)));
}

// The output block and K range of one workgroup (both mains): lin walks
// (tile_n, tile_m, split), z is the stride phase. ok = false when past the
// grid or past this phase's rows (a workgroup-uniform exit).
struct Block { m0: u32, n0: u32, kbeg: u32, kend: u32, split: u32, dm: u32, dn: u32, ok: bool }
fn block(wid: vec3<u32>, nwg: vec3<u32>) -> Block {
    let d = setup(wid.z);
    let lin = wid.x + wid.y * nwg.x;
    let tn = lin % p.tiles_n;
    let rest = lin / p.tiles_n;
    let tm = rest % p.tiles_m;
    let split = rest / p.tiles_m;
    let kbeg = min(d.k, split * p.ksplit);
    let kend = min(d.k, kbeg + p.ksplit);
    return Block(tm * BM, tn * BN, kbeg, kend, split, d.m, d.n,
                 (split < p.nsplit) & (tm * BM < d.m));
}

//! section setup_plain
// Dense GEMM sizes straight from the parameter block; one slice.
fn setup(z: u32) -> Dims { return Dims(p.m, p.n, p.k); }

//! section a_dense
// A stored row-major [M, K].
@group(0) @binding(1) var<storage, read> src_a: array<f32>;
struct ARow { base: u32, ok: bool }
fn a_row(m: u32) -> ARow { return ARow(m * p.k, m < p.m); }
alias AK = u32;
fn a_k(k: u32) -> AK { return k; }
fn load_a(r: ARow, k: AK) -> f32 {
    return select(0.0, src_a[select(0u, r.base + k, r.ok)], r.ok);
}

//! section a_dense_t
// A stored transposed, row-major [K, M].
@group(0) @binding(1) var<storage, read> src_a: array<f32>;
struct ARow { m: u32, ok: bool }
fn a_row(m: u32) -> ARow { return ARow(m, m < p.m); }
alias AK = u32;
fn a_k(k: u32) -> AK { return k; }
fn load_a(r: ARow, k: AK) -> f32 {
    return select(0.0, src_a[select(0u, k * p.m + r.m, r.ok)], r.ok);
}

//! section b_dense
// B stored row-major [K, N].
@group(0) @binding(2) var<storage, read> src_b: array<f32>;
struct BCol { n: u32, ok: bool }
fn b_col(n: u32) -> BCol { return BCol(n, n < p.n); }
alias BKI = u32;
fn b_k(k: u32) -> BKI { return k; }
fn load_b(c: BCol, k: BKI) -> f32 {
    return select(0.0, src_b[select(0u, k * p.n + c.n, c.ok)], c.ok);
}

//! section b_dense_t
// B stored transposed, row-major [N, K].
@group(0) @binding(2) var<storage, read> src_b: array<f32>;
struct BCol { base: u32, ok: bool }
fn b_col(n: u32) -> BCol { return BCol(n * p.k, n < p.n); }
alias BKI = u32;
fn b_k(k: u32) -> BKI { return k; }
fn load_b(c: BCol, k: BKI) -> f32 {
    return select(0.0, src_b[select(0u, c.base + k, c.ok)], c.ok);
}

//! section c_row_plain
// C row-major [M, N]; split s of split-K writes its partial at s * split_stride.
// (With setup_plain: N = p.n.)
fn c_row(split: u32, m: u32) -> u32 { return split * p.split_stride + m * p.n; }

//! section store
// C's store through the epilogue (src/ops/gemm/epilogue.rs generates
// `epilogue` and its bindings from 4 on, in front of this section).
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
fn store_c(row: u32, n: u32, v: f32) { let i = row + n; dst[i] = epilogue(i, n, v); }

//! section bias_grad
// The bias gradient of a backward-weights GEMM, in the same dispatch: the
// workgroups past the GEMM's grid sum the columns of the dy operand
// (BG_SRC, the A or B binding, seen as [bias_rows, bias_cols]), one column
// per invocation, rows in ascending order (a fixed order: the same bits
// every run). No workgroup memory and no barrier: on lavapipe a kernel with
// a barrier anywhere runs all of it on the slow barrier-capable path (a
// tree-reduced version here made the weight-gradient GEMMs 2x slower), and
// the 128x128 tile's 16 KiB of workgroup storage stays within WebGPU's
// limit. The sum goes to element e_bias_off + c of split 0's output (the
// bias follows the weight in the parameter arena) and zeros to the other
// splits, which the split-K reduction then adds.
fn bias_grad_job(g: u32, t: u32) {
    let c = g * NT + t;
    if (c >= p.bias_cols) { return; }
    var acc = 0.0;
    for (var r = 0u; r < p.bias_rows; r = r + 1u) {
        acc = acc + BG_SRC[r * p.bias_cols + c];
    }
    for (var q = 0u; q < p.nsplit; q = q + 1u) {
        dst[q * p.split_stride + p.e_bias_off + c] = select(0.0, acc, q == 0u);
    }
}

//! section a_conv_fwd
// Conv forward as implicit GEMM: A(m, k) = x[n, oy*s + ky - pad_y, ox*s + kx - pad_x, ci]
// with m = (n, oy, ox) and k = (ky, kx, ci): the im2col matrix, never stored.
// Out-of-image taps (the padding) read 0.
@group(0) @binding(1) var<storage, read> src_a: array<f32>;
struct ARow { base: u32, iy: i32, ix: i32, ok: bool }
fn a_row(m: u32) -> ARow {
    let ohw = p.oh * p.ow;
    let n = m / ohw;
    let r = m % ohw;
    let oy = r / p.ow;
    let ox = r % p.ow;
    return ARow(n * p.h * p.w * p.cin, i32(oy * p.stride) - i32(p.pad_y),
                i32(ox * p.stride) - i32(p.pad_x), m < p.m);
}
struct AK { ci: u32, ky: i32, kx: i32 }
fn a_k(k: u32) -> AK {
    let t = udiv(k, p.cin);
    let ky = udiv(t, p.kw);
    return AK(k - t * p.cin, i32(ky), i32(t - ky * p.kw));
}
fn load_a(r: ARow, q: AK) -> f32 {
    let iy = u32(r.iy + q.ky);
    let ix = u32(r.ix + q.kx);
    // negative coordinates wrap to huge u32 and fail the < test
    let inside = r.ok & (iy < p.h) & (ix < p.w);
    return select(0.0, src_a[select(0u, r.base + (iy * p.w + ix) * p.cin + q.ci, inside)], inside);
}

//! section a_conv_wgrad
// Conv backward-weights: dW[(ky, kx, ci), co] = sum_k A(m, k) dy[k, co] with
// m = (ky, kx, ci) and k = (n, oy, ox): A is the transposed im2col matrix.
@group(0) @binding(1) var<storage, read> src_a: array<f32>;
struct ARow { ci: u32, dy: i32, dx: i32, ok: bool }
fn a_row(m: u32) -> ARow {
    let ci = m % p.cin;
    let t = m / p.cin;
    return ARow(ci, i32(t / p.kw) - i32(p.pad_y), i32(t % p.kw) - i32(p.pad_x), m < p.m);
}
struct AK { n: u32, y: i32, x: i32 }
fn a_k(k: u32) -> AK {
    let ohw = p.oh * p.ow;
    let n = udiv(k, ohw);
    let rr = k - n * ohw;
    let oy = udiv(rr, p.ow);
    return AK(n, i32(oy * p.stride), i32((rr - oy * p.ow) * p.stride));
}
fn load_a(r: ARow, q: AK) -> f32 {
    let iy = u32(q.y + r.dy);
    let ix = u32(q.x + r.dx);
    let inside = r.ok & (iy < p.h) & (ix < p.w);
    return select(0.0, src_a[select(0u, ((q.n * p.h + iy) * p.w + ix) * p.cin + r.ci, inside)], inside);
}

//! section conv_dgrad
// Conv backward-data by stride phases. Slice z = (ry, rx) covers the input
// pixels iy with (iy + pad_y) % s == ry (likewise x); only kernel rows
// ky = ry + ty*s (ty < nky) reach them, from output row oy = qy + jy - ty
// where iy = iy0 + jy*s. Each phase is a dense GEMM:
//   M = N * niy * nix (pixels of the phase), K = nky * nkx * Cout, N = Cin,
//   A(m, k) = dy[n, oy, ox, co], B(k, ci) = W[ky, kx, ci, co].
// No zeros are inserted; a phase with no taps (K = 0) writes zeros.
// setup() returns M, N, K as values computed from z and the uniform block
// (the barriers' bounds, see Uniformity above) and stores the phase
// geometry in privates for the index functions.
@group(0) @binding(1) var<storage, read> src_a: array<f32>;
@group(0) @binding(2) var<storage, read> src_b: array<f32>;
var<private> g_ry: u32;
var<private> g_rx: u32;
var<private> g_iy0: u32;
var<private> g_ix0: u32;
var<private> g_niy: u32;
var<private> g_nix: u32;
var<private> g_nkx: u32;
var<private> g_qy: u32;
var<private> g_qx: u32;
var<private> g_m: u32;
fn setup(z: u32) -> Dims {
    let s = p.stride;
    let ry = z / s;
    let rx = z % s;
    let iy0 = (ry + s - p.pad_y % s) % s;
    let ix0 = (rx + s - p.pad_x % s) % s;
    let niy = select(0u, (p.h - iy0 + s - 1u) / s, iy0 < p.h);
    let nix = select(0u, (p.w - ix0 + s - 1u) / s, ix0 < p.w);
    let nky = select(0u, (p.kh - ry + s - 1u) / s, ry < p.kh);
    let nkx = select(0u, (p.kw - rx + s - 1u) / s, rx < p.kw);
    let m = p.batch * niy * nix;
    let k = nky * nkx * p.cout;
    g_ry = ry;
    g_rx = rx;
    g_iy0 = iy0;
    g_ix0 = ix0;
    g_niy = niy;
    g_nix = nix;
    g_nkx = nkx;
    g_qy = (iy0 + p.pad_y - ry) / s;
    g_qx = (ix0 + p.pad_x - rx) / s;
    g_m = m;
    return Dims(m, p.cin, k);
}
struct ARow { base: u32, oy: i32, ox: i32, ok: bool }
fn a_row(m: u32) -> ARow {
    let hw = max(g_niy * g_nix, 1u);
    let n = m / hw;
    let r = m % hw;
    let nix = max(g_nix, 1u);
    return ARow(n * p.oh * p.ow * p.cout, i32(g_qy + r / nix), i32(g_qx + r % nix), m < g_m);
}
struct AK { co: u32, ty: i32, tx: i32 }
fn a_k(k: u32) -> AK {
    let t = udiv(k, p.cout);
    let ty = udiv(t, g_nkx);
    return AK(k - t * p.cout, i32(ty), i32(t - ty * g_nkx));
}
fn load_a(r: ARow, q: AK) -> f32 {
    let oy = u32(r.oy - q.ty);
    let ox = u32(r.ox - q.tx);
    let inside = r.ok & (oy < p.oh) & (ox < p.ow);
    return select(0.0, src_a[select(0u, r.base + (oy * p.ow + ox) * p.cout + q.co, inside)], inside);
}
struct BCol { ci: u32, ok: bool }
fn b_col(n: u32) -> BCol { return BCol(n, n < p.cin); }
// B(k, ci) = W[ky, kx, ci, co] = src_b[tap * Cin * Cout + ci * Cout + co]
struct BKI { off: u32 }
fn b_k(k: u32) -> BKI {
    let t = udiv(k, p.cout);
    let co = k - t * p.cout;
    let ty = udiv(t, g_nkx);
    let ky = g_ry + ty * p.stride;
    let kx = g_rx + (t - ty * g_nkx) * p.stride;
    return BKI((ky * p.kw + kx) * p.cin * p.cout + co);
}
fn load_b(c: BCol, q: BKI) -> f32 {
    return select(0.0, src_b[select(0u, q.off + c.ci * p.cout, c.ok)], c.ok);
}
fn c_row(split: u32, m: u32) -> u32 {
    let hw = max(g_niy * g_nix, 1u);
    let n = m / hw;
    let r = m % hw;
    let nix = max(g_nix, 1u);
    let iy = g_iy0 + (r / nix) * p.stride;
    let ix = g_ix0 + (r % nix) * p.stride;
    return split * p.split_stride + ((n * p.h + iy) * p.w + ix) * p.cin;
}

//! section block_lets
    let m0 = blk.m0;
    let n0 = blk.n0;
    let kend = blk.kend;
    let split = blk.split;
    let dm = blk.dm;
    let dn = blk.dn;
//! section main
var<workgroup> As: array<f32, BK * BM>;
var<workgroup> Bs: array<f32, BK * BN>;

@compute @workgroup_size(NT)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
{{SIDE}}
    let blk = block(wid, nwg);
    if (!blk.ok) { return; }
{{BLOCK}}
    let tr = (t / (BN / TN)) * TM;
    let tc = (t % (BN / TN)) * TN;
{{SETUP}}
{{ACC}}
    for (var k0 = blk.kbeg; k0 < kend; k0 = k0 + BK) {
{{LOAD}}
        workgroupBarrier();
{{INNER}}
        workgroupBarrier();
    }
{{STORE}}
}

//! section main_subgroup
// The direct main with B shared across each subgroup of SG invocations (a
// CPU driver's SIMD lanes: lavapipe runs a subgroup of 8 as one 8-wide
// vector). The SG invocations of a subgroup hold TM rows each (different
// rows) and the same TN columns, so each column's B(k, n) is needed by all
// of them: lane l loads columns l, l + SG, ... and subgroupBroadcast hands
// each to every lane (a vector shuffle on lavapipe, where every load from
// storage is a scalar loop over the lanes). Per k an invocation then loads
// TM + TN / SG values for TM * TN FMAs, where the direct main loads TM + TN.
// K advances BK at a time, the k past the end of the range reading zeros
// (one copy of the unrolled step, no remainder loop).
// Every invocation stays to the end (a broadcast reads its source lane):
// rows past M load zeros and store nothing. Subgroups are taken to be runs
// of SG consecutive local invocation indices.
@compute @workgroup_size(NT)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32,
        @builtin(num_workgroups) nwg: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
{{SIDE}}
    let blk = block(wid, nwg);
    if (!blk.ok) { return; }
{{BLOCK}}
    let sg = t / SG;
    let tc = sg % (BN / TN);
    let tr = (sg / (BN / TN)) * SG + lane;
{{SETUP}}
{{ACC}}
    for (var k = blk.kbeg; k < kend; k = k + BK) {
{{INNER}}
    }
{{STORE}}
}

//! section main_direct
// Barrier-free variant for narrow outputs (a few columns) or few rows: no
// workgroup memory, each invocation computes TM x TN outputs, rows
// m0 + tr + i * (BM / TM) and columns n0 + tc + j * (BN / TN) (interleaved,
// so neighbouring invocations touch neighbouring outputs), reading A and B
// straight from storage through the same index sections; K is unrolled by
// BK. On lavapipe a workgroup barrier costs microseconds, which the tiled
// main cannot amortise when a K step holds only a few FMAs per invocation.
@compute @workgroup_size(NT)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
{{SIDE}}
    let blk = block(wid, nwg);
{{BLOCK}}
    let tr = t / (BN / TN);
    let tc = t % (BN / TN);
    // no barriers: invocations with no rows or columns of their own leave now
    if (!blk.ok | (m0 + tr >= dm) | (n0 + tc >= dn)) { return; }
{{SETUP}}
{{ACC}}
    var k = blk.kbeg;
    for (; k + BK <= kend; k = k + BK) {
{{INNER}}
    }
    for (; k < kend; k = k + 1u) {
{{INNER1}}
    }
{{STORE}}
}
