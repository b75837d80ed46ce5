//! The IDX reader and the MNIST loader: real files, subsets, and every kind
//! of bad input named in the error.

use std::io::Write;
use std::path::Path;

use crate::common::mnist_dir;
use flate2::write::GzEncoder;
use vae_vs_gan::data::{load, read_idx, Dataset, Split};

fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(data);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// A consistent fake dataset of `n` images in `dir`, plain files.
fn fake(dir: &Path, n: u32, labels: &[u8]) {
    write(
        dir,
        "train-images-idx3-ubyte",
        &idx_bytes(0x803, &[n, 28, 28], &vec![7u8; n as usize * 784]),
    );
    write(
        dir,
        "train-labels-idx1-ubyte",
        &idx_bytes(0x801, &[n], labels),
    );
}

fn err(dir: &Path) -> String {
    load(Dataset::Mnist, dir, Split::Train, None)
        .unwrap_err()
        .to_string()
}

#[test]
fn data_mnist_subsets_load_from_gz() {
    let dir = mnist_dir();
    let train = load(Dataset::Mnist, &dir, Split::Train, Some(100)).unwrap();
    assert_eq!(train.len(), 100);
    assert_eq!(train.pixels.len(), 100 * 784);
    // Published facts: the first training digit is a 5, the first test digit a 7.
    assert_eq!(&train.labels[..5], &[5, 0, 4, 1, 9]);
    let test = load(Dataset::Mnist, &dir, Split::Test, Some(3)).unwrap();
    assert_eq!(test.labels, vec![7, 2, 1]);
    assert!(train.image(0).contains(&255));
}

#[test]
fn data_mnist_full_test_split_counts() {
    let test = load(Dataset::Mnist, &mnist_dir(), Split::Test, None).unwrap();
    assert_eq!(test.len(), 10_000);
    let mut hist = [0usize; 10];
    test.labels.iter().for_each(|&l| hist[l as usize] += 1);
    assert_eq!(
        hist,
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
}

#[test]
fn data_plain_and_gz_read_the_same() {
    let d = tempfile::tempdir().unwrap();
    let bytes = idx_bytes(0x801, &[4], &[1, 2, 3, 4]);
    write(d.path(), "a", &bytes);
    write(d.path(), "a.gz", &gz(&bytes));
    let a = read_idx(&d.path().join("a"), None).unwrap();
    assert_eq!(a, read_idx(&d.path().join("a.gz"), None).unwrap());
    assert_eq!(
        read_idx(&d.path().join("a"), Some(2)).unwrap().data,
        vec![1, 2]
    );
}

#[test]
fn data_missing_file_names_it_and_the_fix() {
    let d = tempfile::tempdir().unwrap();
    let e = err(d.path());
    assert!(
        e.contains("train-images-idx3-ubyte.gz") && e.contains("not found"),
        "{e}"
    );
    let e = load(Dataset::Fashion, d.path(), Split::Train, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("apt-get install dataset-fashion-mnist"), "{e}");
}

#[test]
fn data_truncated_file_is_refused() {
    let d = tempfile::tempdir().unwrap();
    fake(d.path(), 3, &[1, 2, 3]);
    let full = idx_bytes(0x803, &[3, 28, 28], &vec![7u8; 3 * 784]);
    write(d.path(), "train-images-idx3-ubyte", &full[..1000]);
    let e = err(d.path());
    assert!(
        e.contains("train-images-idx3-ubyte") && e.contains("truncated"),
        "{e}"
    );
    // Truncated inside the header, and a truncated gzip stream.
    write(d.path(), "train-images-idx3-ubyte", &full[..6]);
    assert!(err(d.path()).contains("truncated"));
    let z = gz(&full);
    write(d.path(), "train-images-idx3-ubyte.gz", &z[..z.len() / 2]);
    let e = err(d.path());
    assert!(
        e.contains(".gz") && (e.contains("truncated") || e.contains("corrupt")),
        "{e}"
    );
}

#[test]
fn data_corrupt_gzip_is_refused() {
    let d = tempfile::tempdir().unwrap();
    fake(d.path(), 3, &[1, 2, 3]);
    let mut z = gz(&idx_bytes(0x803, &[3, 28, 28], &vec![7u8; 3 * 784]));
    for b in z.iter_mut().skip(12).take(20) {
        *b ^= 0x5a;
    }
    write(d.path(), "train-images-idx3-ubyte.gz", &z);
    let e = err(d.path());
    assert!(e.contains("train-images-idx3-ubyte.gz"), "{e}");
}

#[test]
fn data_wrong_magic_is_refused() {
    let d = tempfile::tempdir().unwrap();
    fake(d.path(), 3, &[1, 2, 3]);
    write(
        d.path(),
        "train-labels-idx1-ubyte",
        b"PK\x03\x04 this is a zip",
    );
    let e = err(d.path());
    assert!(
        e.contains("wrong magic number") && e.contains("labels"),
        "{e}"
    );
    // Right shape of magic, wrong element type (0x0D = float).
    write(
        d.path(),
        "train-labels-idx1-ubyte",
        &idx_bytes(0x0D01, &[3], &[0; 12]),
    );
    assert!(err(d.path()).contains("not unsigned byte"));
}

#[test]
fn data_count_mismatch_is_refused() {
    let d = tempfile::tempdir().unwrap();
    fake(d.path(), 3, &[1, 2, 3]);
    write(
        d.path(),
        "train-labels-idx1-ubyte",
        &idx_bytes(0x801, &[2], &[1, 2]),
    );
    let e = err(d.path());
    assert!(e.contains("2 labels but 3 images"), "{e}");
}

#[test]
fn data_label_above_9_is_refused() {
    let d = tempfile::tempdir().unwrap();
    fake(d.path(), 3, &[1, 12, 3]);
    let e = err(d.path());
    assert!(e.contains("label 12 at index 1"), "{e}");
}

#[test]
fn data_images_not_28x28_are_refused() {
    let d = tempfile::tempdir().unwrap();
    fake(d.path(), 3, &[1, 2, 3]);
    write(
        d.path(),
        "train-images-idx3-ubyte",
        &idx_bytes(0x803, &[3, 32, 32], &vec![0u8; 3 * 1024]),
    );
    let e = err(d.path());
    assert!(
        e.contains("[n, 28, 28]") && e.contains("[3, 32, 32]"),
        "{e}"
    );
}

/// Random-looking bytes that deflate cannot shrink much, so a flipped bit
/// lands in literal data, where only the gzip CRC catches it.
fn noisy(n: usize) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

#[test]
fn data_one_flipped_bit_in_a_gz_is_never_loaded_silently() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x-idx3-ubyte.gz");
    let plain = idx_bytes(0x803, &[20, 28, 28], &noisy(20 * 784));
    let z = gz(&plain);
    // Every bit flip past the 10-byte gzip header (whose MTIME/OS bytes
    // carry no data) is an error naming the file, or loads the same bytes;
    // the subset read (the first 2 items) checks the whole stream too.
    let (mut refused, mut same) = (0, 0);
    for i in (10..z.len()).step_by(7) {
        let mut bad = z.clone();
        bad[i] ^= 1 << (i % 8);
        std::fs::write(&p, &bad).unwrap();
        for limit in [None, Some(2)] {
            match read_idx(&p, limit) {
                Err(e) => {
                    assert!(e.to_string().contains("x-idx3-ubyte.gz"), "{e}");
                    refused += 1;
                }
                Ok(idx) => {
                    let n = idx.dims[0] * 784;
                    assert_eq!(idx.data, plain[16..16 + n], "byte {i}: loaded wrong data");
                    same += 1;
                }
            }
        }
    }
    assert!(refused > 100, "{refused} refused, {same} loaded unchanged");
}

#[test]
fn data_a_gz_with_a_bad_crc_names_the_crc_problem() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("y-idx1-ubyte.gz");
    let mut z = gz(&idx_bytes(0x801, &[5], &[1, 2, 3, 4, 5]));
    let n = z.len();
    z[n - 8] ^= 0xff; // the CRC-32 in the trailer
    std::fs::write(&p, &z).unwrap();
    for limit in [None, Some(1)] {
        let e = read_idx(&p, limit).unwrap_err().to_string();
        assert!(
            e.contains("y-idx1-ubyte.gz") && e.contains("corrupt gzip"),
            "{e}"
        );
    }
}

#[test]
fn data_trailing_bytes_and_absurd_headers_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("z-idx1-ubyte");
    std::fs::write(&p, idx_bytes(0x801, &[3], &[1, 2, 3, 4])).unwrap();
    let e = read_idx(&p, None).unwrap_err().to_string();
    assert!(e.contains("1 bytes after the 3 items"), "{e}");
    let e = read_idx(&p, Some(1)).unwrap_err().to_string();
    assert!(
        e.contains("bytes after"),
        "a subset read checks the length too: {e}"
    );
    // A header claiming 4e9 items of 4e9 bytes: refused as it is, with
    // nothing allocated for it.
    std::fs::write(&p, idx_bytes(0x803, &[u32::MAX, 65535, 65535], &[0; 10])).unwrap();
    let e = read_idx(&p, None).unwrap_err().to_string();
    assert!(e.contains("truncated") || e.contains("absurd"), "{e}");
    std::fs::write(&p, idx_bytes(0x803, &[1 << 30, 1, 1], &[0; 10])).unwrap();
    let e = read_idx(&p, None).unwrap_err().to_string();
    assert!(e.contains("truncated"), "{e}");
}

/// Found by the `idx` fuzz target in its first second (fuzz/README.md): a
/// header whose sizes multiply past 2^64 panicked on overflow where overflow
/// checks are on (the fuzz build, debug builds), and in a release build the
/// product wraps, e.g. to 0 for 2^31 * 2^31 * 4, so a 20-byte file with those
/// sizes would load as an array of 2^64 bytes holding none. Refused now,
/// naming the file.
#[test]
fn data_sizes_whose_product_overflows_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("w-idx4-ubyte");
    // The fuzzer's input, minimized: 18 bytes of a gzip stream cut short,
    // enough to inflate to magic 00 00 08 07 and sizes 0xf9f9f9f9.
    let found = [
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x63, 0x60, 0xe0, 0x60, 0xff,
        0x39, 0x00, 0x00,
    ];
    std::fs::write(&p, found).unwrap();
    for limit in [None, Some(0), Some(1)] {
        let e = read_idx(&p, limit).unwrap_err().to_string();
        assert!(e.contains("w-idx4-ubyte") && e.contains("absurd"), "{e}");
    }
    for dims in [
        [1, 1 << 31, 1 << 31, 4],
        [0, 1 << 31, 1 << 31, 4],
        [1, u32::MAX, u32::MAX, u32::MAX],
    ] {
        for bytes in [
            idx_bytes(0x804, &dims, &[]),
            gz(&idx_bytes(0x804, &dims, &[])),
        ] {
            std::fs::write(&p, bytes).unwrap();
            for limit in [None, Some(0), Some(1)] {
                let e = read_idx(&p, limit).unwrap_err().to_string();
                assert!(
                    e.contains("w-idx4-ubyte") && e.contains("absurd"),
                    "{dims:?}: {e}"
                );
            }
        }
    }
}

/// A bounded, seeded property check of the IDX reader, in the normal suite
/// (the fuzz targets in fuzz/ explore far more, but only when run by hand).
/// One small file of 2 images of 28x28 random bytes, plain and gzipped:
/// every truncation, and 300 single-byte changes of each, read whole and as
/// a 1-item subset.
///
/// What it catches: a panic; a truncated file that loads (every prefix must
/// be refused, plain or gzip, subset read included); an error that does not
/// name the file; a change in a plain file's 16-byte header that loads (each
/// such change breaks the magic, the element type, the rank or a size, and
/// no other rank or size fits the file's length); a plain file whose data
/// bytes are not loaded exactly as they are (no checksum: a changed data
/// byte must load, changed, in its place); a gzip file that loads anything
/// but the original bytes (the CRC-32 and length catch changed data; the
/// header's MTIME, XFL and OS bytes carry none).
/// What it cannot catch: anything that needs another input: other ranks or
/// sizes, gzip streams of several members or other compressors' choices,
/// several changed bytes, files of hostile sizes; nor memory use or time
/// (the fuzz targets run with memory and time limits for those).
#[test]
fn data_truncated_or_changed_idx_files_are_refused_or_load_what_they_hold() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    let mut rng = StdRng::seed_from_u64(0x1d8);
    let pixels: Vec<u8> = (0..2 * 784).map(|_| rng.random::<u32>() as u8).collect();
    let plain = idx_bytes(0x803, &[2, 28, 28], &pixels);
    let z = gz(&plain);
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("p-idx3-ubyte");
    let read = |bytes: &[u8]| {
        std::fs::write(&p, bytes).unwrap();
        [read_idx(&p, None), read_idx(&p, Some(1))]
    };
    let named = |e: &vae_vs_gan::Error| {
        let e = e.to_string();
        assert!(e.contains("p-idx3-ubyte"), "{e}");
    };
    for file in [&plain, &z] {
        for n in 0..file.len() {
            for r in read(&file[..n]) {
                match r {
                    Err(e) => named(&e),
                    Ok(idx) => panic!("a {n}-byte prefix of {} loaded: {:?}", file.len(), idx.dims),
                }
            }
        }
        let [full, part] = read(file);
        assert_eq!(full.unwrap().data, pixels);
        assert_eq!(part.unwrap().data, pixels[..784]);
    }
    let (mut refused, mut loaded) = (0, 0);
    for (file, gzipped) in [(&plain, false), (&z, true)] {
        for _ in 0..300 {
            let i = rng.random_range(0..file.len());
            let mut bad = file.clone();
            bad[i] ^= rng.random_range(1..=255u8);
            for (r, limit) in read(&bad).into_iter().zip([2, 1]) {
                match r {
                    Err(e) => {
                        named(&e);
                        assert!(gzipped || i < 16, "plain, data byte {i} changed: {e}");
                        refused += 1;
                    }
                    Ok(idx) if gzipped => {
                        assert_eq!(idx.data, pixels[..limit * 784], "gzip byte {i} changed");
                        loaded += 1;
                    }
                    Ok(idx) => {
                        assert!(
                            i >= 16,
                            "plain, header byte {i} changed, loaded {:?}",
                            idx.dims
                        );
                        assert_eq!(idx.dims, [limit, 28, 28]);
                        assert_eq!(idx.data, bad[16..16 + limit * 784], "plain byte {i}");
                        loaded += 1;
                    }
                }
            }
        }
    }
    // Both outcomes occur: the check is not vacuous.
    assert!(
        refused > 300 && loaded > 300,
        "{refused} refused, {loaded} loaded"
    );
}
