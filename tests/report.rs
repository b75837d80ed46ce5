//! PNG sample grids.

#[test]
fn save_grid_writes_a_png_of_the_right_size() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("grid.png");
    let imgs: Vec<f32> = (0..6 * 784).map(|i| (i % 784) as f32 / 784.0).collect();
    vae_vs_gan::report::save_grid(&p, &imgs, 28, 2, 3, 0.0, 1.0).unwrap();
    let png = std::fs::read(&p).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    // IHDR width and height, big-endian at bytes 16..24.
    let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((w, h), (3 * 28 + 4 * 2, 2 * 28 + 3 * 2));
    assert!(vae_vs_gan::report::save_grid(&p, &imgs[..100], 28, 2, 3, 0.0, 1.0).is_err());
}
