//! Checkpoints round-trip exactly, are written atomically, and a checkpoint
//! of another architecture is refused with every mismatched tensor listed.

mod common;
use vae_vs_gan::io::Checkpoint;

fn sample() -> Checkpoint {
    let mut c = Checkpoint::default();
    c.insert(
        "encoder.0.weight",
        &[32, 1, 3, 3],
        (0..288).map(|i| i as f32 * 0.5).collect(),
    )
    .unwrap();
    c.insert("encoder.0.bias", &[32], vec![f32::MIN_POSITIVE; 32])
        .unwrap();
    c.metadata.insert("model".into(), "vae".into());
    c
}

#[test]
fn checkpoint_round_trips_bit_exactly() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("model.safetensors");
    let c = sample();
    c.save(&p).unwrap();
    assert_eq!(Checkpoint::load(&p).unwrap(), c);
    // No temporary file left behind.
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
}

#[test]
fn checkpoint_of_another_architecture_lists_mismatches() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("m.safetensors");
    sample().save(&p).unwrap();
    let c = Checkpoint::load(&p).unwrap();
    let expected = vec![
        ("encoder.0.weight".to_string(), vec![64, 1, 3, 3]),
        ("decoder.0.weight".to_string(), vec![4, 2]),
    ];
    let e = c.expect(&p, &expected).unwrap_err().to_string();
    assert!(
        e.contains("encoder.0.weight: shape [32, 1, 3, 3], expected [64, 1, 3, 3]"),
        "{e}"
    );
    assert!(e.contains("decoder.0.weight: missing"), "{e}");
    assert!(e.contains("encoder.0.bias: unexpected"), "{e}");
    assert!(e.contains("3 mismatched"), "{e}");
}

#[test]
fn checkpoint_corrupt_file_is_an_error_and_save_failure_keeps_the_old_file() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("m.safetensors");
    std::fs::write(&p, b"garbage").unwrap();
    let e = Checkpoint::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("m.safetensors") && e.contains("not a valid safetensors"),
        "{e}"
    );

    sample().save(&p).unwrap();
    // Saving into a folder that does not exist fails and touches nothing else.
    let bad = d.path().join("no/such/dir/m.safetensors");
    assert!(sample().save(&bad).is_err());
    assert_eq!(Checkpoint::load(&p).unwrap(), sample());
}

/// Checkpoints written before a change must load after it. Two fixtures
/// written by commit 2d2306a: the tensor names, shapes and metadata of every
/// model's checkpoint (`legacy/layouts.json`: the VAE, the GAN with either
/// head, the classifier with its Adam moments), and a whole VAE checkpoint
/// (`legacy/vae_tiny_1epoch.safetensors`, `train_vae --preset tiny
/// --epochs 1`), which must load and save back bit for bit.
mod legacy {
    use super::common::gpu;
    use vae_vs_gan::compare::load_vae;
    use vae_vs_gan::io::Checkpoint;
    use vae_vs_gan::models::classifier::{Classifier, ClassifierConfig};
    use vae_vs_gan::models::gan::{DHead, Gan, GanConfig};
    use vae_vs_gan::models::vae::{Vae, VaeConfig};
    use vae_vs_gan::optim::adam::AdamConfig;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/legacy");

    fn layout(ck: &Checkpoint) -> serde_json::Value {
        let t: Vec<serde_json::Value> = ck
            .tensors
            .iter()
            .map(|(n, (s, _))| serde_json::json!([n, s]))
            .collect();
        serde_json::json!({"tensors": t, "metadata": ck.metadata})
    }

    #[test]
    fn checkpoint_layouts_are_those_of_earlier_versions() {
        let g = gpu();
        let want: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/layouts.json")).unwrap())
                .unwrap();
        let a = AdamConfig::keras(1e-3);
        let vae = Vae::new(
            g,
            VaeConfig {
                latent: 2,
                batch: 1,
                adam: a,
                seed: 0,
                binarize: false,
            },
        )
        .unwrap();
        let mut got = vec![("vae", layout(&vae.checkpoint(g).unwrap()))];
        for (k, head) in [
            ("gan_global_max_pool", DHead::GlobalMaxPool),
            ("gan_flatten", DHead::Flatten),
        ] {
            let c = GanConfig {
                latent: 100,
                batch: 2,
                adam_g: a,
                adam_d: a,
                seed: 0,
                head,
            };
            got.push((k, layout(&Gan::new(g, c).unwrap().checkpoint(g).unwrap())));
        }
        let c = ClassifierConfig {
            batch: 1,
            adam: a,
            seed: 0,
        };
        let ck = Classifier::new(g, c).unwrap().checkpoint(g, true).unwrap();
        got.push(("classifier", layout(&ck)));
        assert_eq!(want.as_object().unwrap().len(), got.len());
        for (k, v) in got {
            assert_eq!(want[k], v, "{k}: checkpoint layout changed");
        }
    }

    #[test]
    fn a_vae_checkpoint_from_an_earlier_version_loads_and_saves_back_bit_for_bit() {
        let g = gpu();
        let path = std::path::PathBuf::from(format!("{DIR}/vae_tiny_1epoch.safetensors"));
        let old = Checkpoint::load(&path).unwrap();
        let vae = load_vae(g, &path).unwrap();
        let new = vae.checkpoint(g).unwrap();
        assert!(old.tensors.len() > 20, "moments included");
        assert_eq!(old.tensors, new.tensors, "every tensor bit for bit");
        assert_eq!(old.metadata["latent_dim"], new.metadata["latent_dim"]);
    }
}
