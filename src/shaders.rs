//! Every WGSL file in `shaders/`, embedded at build time. One file per kernel
//! family. The naga validation test covers every kernel compiled from them
//! through [`crate::all_kernels`]. Imports nothing: the GPU layer above
//! compiles these.

/// A WGSL file from `shaders/`.
#[derive(Clone, Copy, Debug)]
pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
}

macro_rules! shader {
    ($const:ident, $name:literal) => {
        pub const $const: Shader = Shader {
            name: $name,
            source: include_str!(concat!("../shaders/", $name, ".wgsl")),
        };
    };
}

shader!(STEP, "step");
shader!(STEP_END, "step_end");
shader!(ELEMENTWISE, "elementwise");
shader!(ACTIVATIONS, "activations");
shader!(GATHER, "gather");
shader!(NORM, "norm");
shader!(POOL, "pool");
shader!(ADAM, "adam");
shader!(RMSPROP, "rmsprop");
shader!(PHILOX, "philox");
shader!(RNG, "rng");
shader!(WG_REDUCE, "wg_reduce");
shader!(REDUCE, "reduce");
shader!(DROPOUT, "dropout");
shader!(REPARAM, "reparam");
shader!(BCE, "bce");
shader!(BCE_LABEL_NOISE, "bce_label_noise");
shader!(TARGET_ROWS, "target_rows");
shader!(LEAST_SQUARES, "least_squares");
shader!(HINGE, "hinge");
shader!(LINEAR_LOSS, "linear_loss");
shader!(SOFTMAX_CE, "softmax_ce");
shader!(KL, "kl");
shader!(KL_MC, "kl_mc");
shader!(GEMM, "gemm");
shader!(SPLITS, "splits");
shader!(COPY, "copy");
shader!(CLAMP, "clamp");
shader!(COL2IM, "col2im");
