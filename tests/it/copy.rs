//! Row-range copy: GPU equals the CPU reference bit for bit (words are moved,
//! no arithmetic: no tolerance), rows outside the range keep their previous
//! contents (the poison), and bad shapes are refused with nothing recorded.

use crate::common::*;
use vae_vs_gan::ops::copy::{copy_rows, copy_rows_cpu};
use vae_vs_gan::{Step, Tensor};

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn copy_rows_stacks_two_batches_bit_for_bit() {
    let g = gpu();
    // Odd sizes: 3 + 5 rows of 13x13x1.
    let (a_rows, b_rows, row) = (3usize, 5usize, 13 * 13);
    let a = uniform(a_rows * row, -1.0, 1.0, 1);
    let b = uniform(b_rows * row, -1.0, 1.0, 2);
    let at = Tensor::from_f32(g, &[a_rows, 13, 13, 1], &a, "a").unwrap();
    let bt = Tensor::from_f32(g, &[b_rows, 13, 13, 1], &b, "b").unwrap();
    let dst = Tensor::zeros(g, &[a_rows + b_rows, 13, 13, 1], "dst").unwrap();
    dst.poison(g);
    let mut s = Step::new("copy");
    copy_rows(g, &mut s, &at, &dst, 0).unwrap();
    copy_rows(g, &mut s, &bt, &dst, a_rows).unwrap();
    run(&s);
    let poison = vec![f32::from_bits(0x7fc0_0000); (a_rows + b_rows) * row];
    let want = copy_rows_cpu(&a, &poison, 0, row);
    let want = copy_rows_cpu(&b, &want, a_rows, row);
    assert_eq!(bits(&dst.read_f32(g).unwrap()), bits(&want));
    assert_eq!(
        want.iter().filter(|v| v.is_nan()).count(),
        0,
        "every row written"
    );
}

#[test]
fn copy_rows_leaves_other_rows_untouched() {
    let g = gpu();
    let src = uniform(2 * 7, -1.0, 1.0, 3);
    let st = Tensor::from_f32(g, &[2, 7], &src, "src").unwrap();
    let dst = Tensor::zeros(g, &[5, 7], "dst").unwrap();
    dst.poison(g);
    let mut s = Step::new("copy");
    copy_rows(g, &mut s, &st, &dst, 2).unwrap();
    run(&s);
    let got = dst.read_f32(g).unwrap();
    let poison = vec![f32::from_bits(0x7fc0_0000); 5 * 7];
    assert_eq!(bits(&got), bits(&copy_rows_cpu(&src, &poison, 2, 7)));
    assert!(got[..14].iter().chain(&got[28..]).all(|v| v.is_nan()));
    // u32 tensors copy too.
    let us = Tensor::from_u32(g, &[1, 3], &[7, 8, 9], "u src").unwrap();
    let ud = Tensor::from_u32(g, &[2, 3], &[0; 6], "u dst").unwrap();
    let mut s = Step::new("copy u32");
    copy_rows(g, &mut s, &us, &ud, 1).unwrap();
    run(&s);
    assert_eq!(ud.read_u32(g).unwrap(), vec![0, 0, 0, 7, 8, 9]);
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
