//! Fused epilogues (`src/ops/epilogue.rs`): the shared checks
//! (tests/checks/epilogue.rs, with their tolerances) of each fused tail
//! against the CPU references of the unfused ops, and the refusals at
//! record time.

use crate::checks::epilogue::{self as check, ALPHA};
use crate::common::*;
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::ops::activation::Activation;
use vae_vs_gan::ops::batch_norm::{BatchNorm, BatchNormConfig};
use vae_vs_gan::ops::conv2d::{self, Conv2d, Padding};
use vae_vs_gan::ops::dense;
use vae_vs_gan::ops::gemm::{Dropout, Epilogue, Fused, GemmConfig, Main};
use vae_vs_gan::ops::pool;
use vae_vs_gan::ops::rng::Philox;
use vae_vs_gan::{Step, Tensor};

/// 1. conv2d forward: bias + each activation, and bias + LeakyReLU +
///    dropout (mask bit for bit), both mains, unsplit and split-K.
#[test]
fn conv2d_forward_bias_activation_dropout_matches_cpu() {
    pass(check::conv2d_forward(gpu()));
}

/// 2. Transposed conv forward with bias + tanh, and bias + LeakyReLU +
///    dropout, by stride phases and by GEMM + col2im.
#[test]
fn conv_transpose_forward_bias_tanh_by_phases_and_col2im_matches_cpu() {
    pass(check::conv_transpose_forward(gpu()));
}

/// 3a. conv2d backward data ending in dmask + dact.
#[test]
fn conv2d_backward_data_dmask_dact_matches_cpu() {
    pass(check::conv2d_backward_data(gpu()));
}

/// 3b. dense backward data with dmask + each dact, unsplit and split-K.
#[test]
fn dense_backward_data_dmask_dact_matches_cpu() {
    pass(check::dense_backward_data(gpu()));
}

/// 4a. conv2d weight + bias gradient in one output.
#[test]
fn conv2d_backward_weights_bias_matches_cpu() {
    pass(check::conv2d_backward_weights_bias(gpu()));
}

/// 4b. Transposed conv and dense weight + bias gradient in one output.
#[test]
fn conv_transpose_and_dense_backward_weights_bias_match_cpu() {
    pass(check::conv_transpose_and_dense_backward_weights_bias(gpu()));
}

/// 5. Pool backwards ending in dmask + dact: bit for bit.
#[test]
fn pool_backward_fused_matches_cpu_bit_for_bit() {
    pass(check::pool_backward(gpu()));
}

/// 6. Batch norm with a fused LeakyReLU (and ReLU), training and eval.
#[test]
fn batch_norm_fused_activation_matches_cpu() {
    pass(check::batch_norm(gpu()));
}

/// 7. Layers packed into a ParamArena vs their unpacked twins, and the
///    arena's padding after Adam.
#[test]
fn packed_layers_match_unpacked_and_arena_padding_stays_zero() {
    pass(check::packed_layers(gpu()));
}

/// 8. Refusals at record time, each naming the op and what is wrong, with
///    nothing recorded: a saved tensor of the wrong length (dact, dmask,
///    dropout mask), a dropout rate outside [0, 1), act and dact together,
///    a bias range past its tensor, a weight|bias output of the wrong
///    length, and an activation batch norm cannot fuse.
#[test]
fn epilogue_refusals_are_clear_errors() {
    let g = gpu();
    let state = StepState::new(g, 1, 1, 0).unwrap();
    let conv = Conv2d::new(3, 3, 1, Padding::uniform(1));
    let x = Tensor::zeros(g, &[2, 5, 5, 3], "x").unwrap();
    let w = Tensor::zeros(g, &[3, 3, 3, 4], "w").unwrap();
    let b = Tensor::zeros(g, &[4], "b").unwrap();
    let y = Tensor::zeros(g, &[2, 5, 5, 4], "y").unwrap();
    let dx = Tensor::zeros(g, &[2, 5, 5, 3], "dx").unwrap();
    let short = Tensor::zeros(g, &[149], "short saved").unwrap();
    let good_x = Tensor::zeros(g, &[2, 5, 5, 3], "saved x").unwrap();
    let good_y = Tensor::zeros(g, &[2, 5, 5, 4], "mask y").unwrap();
    let mut s = Step::new("refused");

    // the saved activation output of the wrong length (backward data)
    assert_err_mentions(
        conv.backward_data_fused(
            g,
            &mut s,
            &y,
            &w,
            &Epilogue::dact(Activation::Tanh, &short),
            &dx,
        ),
        &[
            "conv2d_backward_data",
            "short saved",
            "[2, 5, 5, 3]",
            "[149]",
        ],
    );
    // ... through the col2im path and the split-K reduction
    let d = conv.dims("t", 2, 5, 5, 3, 4).unwrap();
    for (col2im, splits) in [(true, None), (false, Some(3))] {
        let c = GemmConfig {
            main: Some(Main::Direct),
            tile: None,
            col2im: Some(col2im),
            splits,
        };
        let f = Fused::epi(Epilogue::dact(Activation::Relu, &short));
        assert_err_mentions(
            conv2d::record_backward_data(g, &mut s, "refusal_test", &d, &y, &w, &f, &dx, &c),
            &["refusal_test", "short saved", "[2, 5, 5, 3]", "[149]"],
        );
    }
    // a dmask of the wrong length (dense backward data, pool backward)
    let dyd = Tensor::zeros(g, &[3, 5], "dy").unwrap();
    let wd = Tensor::zeros(g, &[7, 5], "w").unwrap();
    let dxd = Tensor::zeros(g, &[3, 7], "dx").unwrap();
    let shortd = Tensor::zeros(g, &[20], "short mask").unwrap();
    let epi = Epilogue {
        dmask: Some(&shortd),
        ..Epilogue::NONE
    };
    assert_err_mentions(
        dense::dense_backward_data_fused(g, &mut s, &dyd, &wd, &epi, &dxd),
        &["dense_backward_data", "short mask", "[3, 7]", "[20]"],
    );
    let arg = Tensor::from_u32(g, &[2, 3], &[0; 6], "argmax").unwrap();
    let dyp = Tensor::zeros(g, &[2, 3], "dy").unwrap();
    let epi = Epilogue {
        dmask: Some(&short),
        dact: Some((Activation::LeakyRelu(ALPHA), &good_x)),
        ..Epilogue::NONE
    };
    assert_err_mentions(
        pool::global_max_pool_backward_fused(g, &mut s, &arg, &dyp, &dx, &epi),
        &[
            "global_max_pool_backward",
            "short saved",
            "[2, 5, 5, 3]",
            "[149]",
        ],
    );
    // a dropout mask of the wrong length (forward)
    let drop = |mask, rate| Fused {
        bias: Some((&b, 0)),
        epi: Epilogue {
            act: Some(Activation::LeakyRelu(ALPHA)),
            dropout: Some(Dropout {
                rng: Philox::new(1, 1),
                rate,
                counters: &state.counters,
                mask,
            }),
            ..Epilogue::NONE
        },
        bias_grad: None,
    };
    assert_err_mentions(
        conv.forward_fused(g, &mut s, &x, &w, &drop(&short, 0.5), &y),
        &["conv2d_forward", "short saved", "[2, 5, 5, 4]", "[149]"],
    );
    // a dropout rate outside [0, 1)
    for rate in [1.0f32, -0.1, 1.5, f32::NAN] {
        assert_err_mentions(
            conv.forward_fused(g, &mut s, &x, &w, &drop(&good_y, rate), &y),
            &["conv2d_forward", "dropout rate", "must be in [0, 1)"],
        );
    }
    // act and dact together
    let both = Epilogue {
        act: Some(Activation::Relu),
        dact: Some((Activation::Relu, &good_y)),
        ..Epilogue::NONE
    };
    assert_err_mentions(
        conv.forward_fused(g, &mut s, &x, &w, &Fused::epi(both), &y),
        &["conv2d_forward", "an epilogue is forward or backward"],
    );
    let both = Epilogue {
        act: Some(Activation::Sigmoid),
        dact: Some((Activation::Sigmoid, &good_x)),
        ..Epilogue::NONE
    };
    assert_err_mentions(
        conv.backward_data_fused(g, &mut s, &y, &w, &both, &dx),
        &["conv2d_backward_data", "an epilogue is forward or backward"],
    );
    // a bias range past its tensor (a packed layer's weight|bias range)
    let wb = Tensor::zeros(g, &[110], "w|b").unwrap();
    let f = Fused {
        bias: Some((&wb, 108)),
        ..Fused::default()
    };
    assert_err_mentions(
        conv.forward_fused(g, &mut s, &x, &w, &f, &y),
        &["conv2d_forward", "bias range 108..112", "w|b"],
    );
    // a weight|bias gradient output of the wrong length
    let dwb = Tensor::zeros(g, &[108 + 3], "dw|db").unwrap();
    assert_err_mentions(
        conv.backward_weights_bias(g, &mut s, &x, &y, &w, &dwb),
        &["conv2d_backward_weights", "dw|db", "[112]", "[111]"],
    );
    // batch norm fuses only ReLU and LeakyReLU
    let cfg = BatchNormConfig {
        act: Some(Activation::Sigmoid),
        ..BatchNormConfig::default()
    };
    assert_err_mentions(
        BatchNorm::new(g, &[2, 5, 5, 4], cfg).map(|_| ()),
        &["batch_norm", "Sigmoid", "only ReLU and LeakyReLU"],
    );
    assert!(
        s.is_empty(),
        "nothing recorded after a refused op: {}",
        s.len()
    );
}
