// Activation functions shared by the pointwise kernels (elementwise.wgsl)
// and the fused epilogues of the GEMM, split-K and col2im kernels.
//
// A snippet, not a kernel family: Rust concatenates it in front of the
// kernels that need it. It declares no bindings, only functions.

// Stable for any |x|: exp of a non-positive argument only.
fn act_sigmoid(x: f32) -> f32 {
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

// tanh(x) = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|) <= 1: never overflows.
fn act_tanh(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - e) / (1.0 + e);
}
