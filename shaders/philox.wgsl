// Philox 4x32-10 counter-based RNG (Salmon, Moraes, Dror, Shaw, "Parallel
// random numbers: as easy as 1, 2, 3", SC 2011; Random123's philox4x32_10).
//
// A snippet, not a kernel family: Rust concatenates it in front of the
// kernel files that draw numbers (rng, dropout, reparam). It declares no
// bindings, only constants and functions, so it composes with any file.
//
// Counter convention of the engine: (element index, step counter, stream id, 0),
// key = the 64-bit seed as (low word, high word). The step counter is
// StepState.counters[0], read from a storage binding by the caller, so steps
// sharing one submit draw different numbers.

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// High 32 bits of the 64-bit product a * b, from 16-bit halves (WGSL has no
// 64-bit integers). The middle sum is at most 3 * 0xffff: no overflow.
fn philox_mulhi(a: u32, b: u32) -> u32 {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let lolo = a_lo * b_lo;
    let lohi = a_lo * b_hi;
    let hilo = a_hi * b_lo;
    let hihi = a_hi * b_hi;
    let mid = (lolo >> 16u) + (lohi & 0xffffu) + (hilo & 0xffffu);
    return hihi + (lohi >> 16u) + (hilo >> 16u) + (mid >> 16u);
}

fn philox_round(c: vec4<u32>, k: vec2<u32>) -> vec4<u32> {
    let hi0 = philox_mulhi(PHILOX_M0, c.x);
    let lo0 = PHILOX_M0 * c.x;
    let hi1 = philox_mulhi(PHILOX_M1, c.z);
    let lo1 = PHILOX_M1 * c.z;
    return vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
}

// Ten rounds, the key bumped by the Weyl constants between rounds (unrolled).
fn philox4x32_10(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    let w = vec2<u32>(PHILOX_W0, PHILOX_W1);
    var c = philox_round(ctr, key);
    var k = key + w;
    c = philox_round(c, k); k = k + w;
    c = philox_round(c, k); k = k + w;
    c = philox_round(c, k); k = k + w;
    c = philox_round(c, k); k = k + w;
    c = philox_round(c, k); k = k + w;
    c = philox_round(c, k); k = k + w;
    c = philox_round(c, k); k = k + w;
    c = philox_round(c, k); k = k + w;
    c = philox_round(c, k);
    return c;
}

// The four words drawn for element `i` of stream `stream` at step `step`.
fn philox_draw(i: u32, step: u32, stream: u32, key: vec2<u32>) -> vec4<u32> {
    return philox4x32_10(vec4<u32>(i, step, stream, 0u), key);
}

// Uniform in [0, 1) from the top 24 bits of a word: exact in f32.
fn philox_unit(w: u32) -> f32 {
    return f32(w >> 8u) * 5.9604644775390625e-8;
}

// Standard normal by Box-Muller from words 0 and 1:
// u1 = (top24(w0) + 1) / 2^24 in (0, 1] (log finite), u2 = top24(w1) / 2^24,
// z = sqrt(-2 ln u1) * cos(2 pi u2) = -sqrt(-2 ln u1) * cos(2 pi u2 - pi):
// the angle is kept in [-pi, pi), where WGSL bounds cos's absolute error
// by 2^-11 (outside that range the spec gives no bound).
fn philox_normal(w: vec4<u32>) -> f32 {
    let u1 = (f32(w.x >> 8u) + 1.0) * 5.9604644775390625e-8;
    let u2 = f32(w.y >> 8u) * 5.9604644775390625e-8;
    let r = sqrt(-2.0 * log(u1));
    return -r * cos(6.2831853071795864 * u2 - 3.1415926535897932);
}
