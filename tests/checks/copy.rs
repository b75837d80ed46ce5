//! Row-range copy: GPU equals the CPU reference bit for bit (words are moved,
//! no arithmetic: no tolerance), and rows outside the range keep their
//! previous contents (the poison).

use super::*;
use vae_vs_gan::ops::copy::{copy_rows, copy_rows_cpu};

pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    r.record("copy stacks two batches", stacks_two_batches(g).await);
    r.record(
        "copy leaves other rows untouched",
        leaves_other_rows(g).await,
    );
}

pub async fn stacks_two_batches(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    // Odd sizes: 3 + 5 rows of 13x13x1.
    let (a_rows, b_rows, row) = (3usize, 5usize, 13 * 13);
    let a = uniform(a_rows * row, -1.0, 1.0, 1);
    let b = uniform(b_rows * row, -1.0, 1.0, 2);
    let at = tensor(g, &[a_rows, 13, 13, 1], &a, "a")?;
    let bt = tensor(g, &[b_rows, 13, 13, 1], &b, "b")?;
    let dst = poisoned(g, &[a_rows + b_rows, 13, 13, 1], "dst")?;
    let mut s = Step::new("copy");
    copy_rows(g, &mut s, &at, &dst, 0)?;
    copy_rows(g, &mut s, &bt, &dst, a_rows)?;
    run(g, &[&s])?;
    let poison = vec![f32::from_bits(0x7fc0_0000); (a_rows + b_rows) * row];
    let want = copy_rows_cpu(&a, &poison, 0, row);
    let want = copy_rows_cpu(&b, &want, a_rows, row);
    worst.equal(
        "copy_rows stacked",
        &bits(&read(g, &dst).await?),
        &bits(&want),
    )?;
    ensure(want.iter().filter(|v| v.is_nan()).count() == 0, || {
        "every row written".to_string()
    })?;
    worst.done()
}

pub async fn leaves_other_rows(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let src = uniform(2 * 7, -1.0, 1.0, 3);
    let st = tensor(g, &[2, 7], &src, "src")?;
    let dst = poisoned(g, &[5, 7], "dst")?;
    let mut s = Step::new("copy");
    copy_rows(g, &mut s, &st, &dst, 2)?;
    run(g, &[&s])?;
    let got = read(g, &dst).await?;
    let poison = vec![f32::from_bits(0x7fc0_0000); 5 * 7];
    worst.equal(
        "copy_rows into rows 2..4",
        &bits(&got),
        &bits(&copy_rows_cpu(&src, &poison, 2, 7)),
    )?;
    ensure(
        got[..14].iter().chain(&got[28..]).all(|v| v.is_nan()),
        || format!("rows outside 2..4 were written: {got:?}"),
    )?;
    // u32 tensors copy too.
    let us = Tensor::from_u32(g, &[1, 3], &[7, 8, 9], "u src")?;
    let ud = Tensor::from_u32(g, &[2, 3], &[0; 6], "u dst")?;
    let mut s = Step::new("copy u32");
    copy_rows(g, &mut s, &us, &ud, 1)?;
    run(g, &[&s])?;
    worst.equal(
        "copy_rows u32",
        &ud.read_u32_async(g).await?,
        &[0, 0, 0, 7, 8, 9],
    )?;
    worst.done()
}
