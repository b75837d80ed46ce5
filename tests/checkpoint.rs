//! Checkpoints round-trip exactly, are written atomically, and a checkpoint
//! of another architecture is refused with every mismatched tensor listed.

use vae_vs_gan::train::Checkpoint;

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
