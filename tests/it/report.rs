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

#[test]
fn line_plot_and_scatter_write_pngs_with_text() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("loss.png");
    let series = vec![
        (
            "train".to_string(),
            (0..10)
                .map(|i| (i as f64, 100.0 / (i as f64 + 1.0)))
                .collect(),
        ),
        (
            "test".to_string(),
            (0..10)
                .map(|i| (i as f64, 110.0 / (i as f64 + 1.0)))
                .collect(),
        ),
    ];
    vae_vs_gan::report::line_plot(&p, "VAE loss", "epoch", "nats", &series).unwrap();
    let img = image::open(&p).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (800, 500));
    // Not blank: drawn lines and text make dark pixels.
    let dark = img
        .pixels()
        .filter(|px| px.0.iter().all(|&c| c < 100))
        .count();
    assert!(dark > 500, "only {dark} dark pixels");

    let q = d.path().join("scatter.png");
    let pts: Vec<(f32, f32)> = (0..100).map(|i| (i as f32, (i * i) as f32)).collect();
    let cls: Vec<u8> = (0..100).map(|i| (i % 10) as u8).collect();
    vae_vs_gan::report::scatter_by_class(&q, "latent", &pts, &cls).unwrap();
    assert!(image::open(&q).is_ok());
}
