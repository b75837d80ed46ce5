//! Every WGSL file in `shaders/`, embedded at build time. One file per kernel
//! family; [`ALL`] lists them for the naga validation test.

use crate::gpu::Shader;

macro_rules! shader {
    ($const:ident, $name:literal) => {
        pub const $const: Shader = Shader {
            name: $name,
            source: include_str!(concat!("../shaders/", $name, ".wgsl")),
        };
    };
}

shader!(STEP, "step");
shader!(ELEMENTWISE, "elementwise");

/// Every shader family.
pub const ALL: &[Shader] = &[
    STEP,
    ELEMENTWISE,
    PHILOX,
    RNG,
    WG_REDUCE,
    REDUCE,
    DROPOUT,
    REPARAM,
    BCE,
    SOFTMAX_CE,
    KL,
];
shader!(PHILOX, "philox");
shader!(RNG, "rng");
shader!(WG_REDUCE, "wg_reduce");
shader!(REDUCE, "reduce");
shader!(DROPOUT, "dropout");
shader!(REPARAM, "reparam");
shader!(BCE, "bce");
shader!(SOFTMAX_CE, "softmax_ce");
shader!(KL, "kl");
