//! Layers built on the ops: each owns its parameters (value, gradient, Adam
//! moments), allocated once when the model is built.

pub mod batch_norm;
pub mod layer;
pub mod param;

pub use batch_norm::BatchNormLayer;
pub use layer::{Dense, Layer, WeightOp};
pub use param::{glorot_uniform, Layout, Param, ParamArena};
