//! Pictures: PNG sample grids, line plots and latent scatters.

pub mod grid;
pub mod plot;

pub use grid::save_grid;
pub use plot::{line_plot, scatter_by_class};
