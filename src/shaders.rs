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
shader!(GEMM, "gemm");
shader!(REDUCE, "reduce");

/// Every shader family.
pub const ALL: &[Shader] = &[STEP, ELEMENTWISE, GEMM, REDUCE];
