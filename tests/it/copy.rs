//! Row-range copy: GPU equals the CPU reference bit for bit and rows
//! outside the range keep their previous contents (the shared checks,
//! tests/checks/copy.rs), and bad shapes are refused with nothing recorded.

use crate::common::*;
use vae_vs_gan::ops::copy::copy_rows;
use vae_vs_gan::{Step, Tensor};

use crate::checks::copy as check;

#[test]
fn copy_rows_stacks_two_batches_bit_for_bit() {
    pass(check::stacks_two_batches(gpu()));
}

#[test]
fn copy_rows_leaves_other_rows_untouched() {
    pass(check::leaves_other_rows(gpu()));
}

#[test]
fn copy_rows_refuses_bad_shapes() {
    let g = gpu();
    let src = Tensor::zeros(g, &[3, 4], "src").unwrap();
    let mut s = Step::new("copy");
    let e = copy_rows(
        g,
        &mut s,
        &src,
        &Tensor::zeros(g, &[4, 5], "dst").unwrap(),
        0,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("copy_rows") && e.contains("[3, 4]") && e.contains("[4, 5]"),
        "{e}"
    );
    let e = copy_rows(
        g,
        &mut s,
        &src,
        &Tensor::zeros(g, &[4, 4], "dst").unwrap(),
        2,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("copy_rows") && e.contains("2..5"), "{e}");
    let u = Tensor::from_u32(g, &[4, 4], &[0; 16], "u").unwrap();
    let e = copy_rows(g, &mut s, &src, &u, 0).unwrap_err().to_string();
    assert!(e.contains("copy_rows"), "{e}");
    assert!(s.is_empty(), "nothing recorded on error");
}
