//! Pictures: PNG sample grids, line plots and latent scatters.

pub mod grid;
#[cfg(feature = "native")]
pub mod plot;

pub use grid::{grid_image, save_grid};
#[cfg(feature = "native")]
pub use plot::{line_plot, scatter_by_class};
