//! Pictures and reports: PNG sample grids (plots and the comparison report
//! land with the models).

pub mod grid;

pub use grid::save_grid;
