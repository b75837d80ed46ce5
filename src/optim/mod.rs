//! Optimizers (Adam; RMSProp, the WGAN's): a GPU kernel and a CPU
//! reference of each update.

pub mod adam;
pub mod rmsprop;
