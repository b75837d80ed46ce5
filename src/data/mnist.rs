//! MNIST and Fashion-MNIST: four IDX files per dataset, 28x28 u8 images
//! with labels 0..=9. Any number of images can be loaded (tests use small
//! subsets); the files may be gzipped or plain.

use std::path::{Path, PathBuf};

use crate::data::idx::{parse_idx, read_idx, Idx};
use crate::error::{Error, Result};

/// Image side in pixels.
pub const SIDE: usize = 28;
/// Pixels per image.
pub const PIXELS: usize = SIDE * SIDE;

/// Which dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Dataset {
    Mnist,
    /// Zalando's Fashion-MNIST (Debian package `dataset-fashion-mnist`).
    Fashion,
}

impl Dataset {
    /// Where the files are unless `--data-dir` says otherwise: `data/mnist`
    /// under the working directory (the repository root), or the Debian
    /// package's folder for Fashion-MNIST.
    pub fn default_dir(self) -> PathBuf {
        match self {
            Dataset::Mnist => PathBuf::from("data/mnist"),
            Dataset::Fashion => PathBuf::from("/usr/share/datasets/fashion-mnist"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::Fashion => "fashion",
        }
    }

    /// What to do when the files are missing.
    fn hint(self) -> &'static str {
        match self {
            Dataset::Mnist => {
                "the repository ships them in data/mnist; pass --data-dir to use another folder"
            }
            Dataset::Fashion => {
                "install them with `apt-get install dataset-fashion-mnist`, or pass --data-dir"
            }
        }
    }
}

/// Training or test set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// Images (row-major, `n * 784` bytes) and their labels.
#[derive(Clone, Debug)]
pub struct Images {
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Images {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// The `i`-th image's 784 bytes.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * PIXELS..(i + 1) * PIXELS]
    }
    /// The first `n` images (at most all) as pixels in [0, 1], the models'
    /// and the metrics' scale.
    pub fn unit_pixels(&self, n: usize) -> Vec<f32> {
        self.pixels[..n.min(self.len()) * PIXELS]
            .iter()
            .map(|&b| b as f32 / 255.0)
            .collect()
    }
}

/// `name.gz` if it exists, else `name` (whatever is there: reading a
/// folder is refused as one); a missing pair is an error naming the
/// expected file and how to get it.
fn find(dir: &Path, name: &str, dataset: Dataset) -> Result<PathBuf> {
    let gz = dir.join(format!("{name}.gz"));
    let plain = dir.join(name);
    if gz.is_file() || (gz.exists() && !plain.is_file()) {
        Ok(gz)
    } else if plain.exists() {
        Ok(plain)
    } else {
        Err(Error::data(
            &gz,
            format!(
                "{} file not found (nor {}): {}",
                dataset.name(),
                plain.display(),
                dataset.hint()
            ),
        ))
    }
}

/// Load the first `limit` images (all when `None`) of a split from `dir`.
pub fn load(dataset: Dataset, dir: &Path, split: Split, limit: Option<usize>) -> Result<Images> {
    let ipath = find(
        dir,
        &format!("{}-images-idx3-ubyte", split.prefix()),
        dataset,
    )?;
    let lpath = find(
        dir,
        &format!("{}-labels-idx1-ubyte", split.prefix()),
        dataset,
    )?;
    images_from_idx(
        read_idx(&ipath, limit)?,
        &ipath,
        read_idx(&lpath, limit)?,
        &lpath,
    )
}

/// The first `limit` images (all when `None`) of an images file's and a
/// labels file's bytes (gzipped or plain), as [`load`] checks them;
/// `images_name` and `labels_name` name them in errors.
pub fn images_from_bytes(
    images: &[u8],
    images_name: &Path,
    labels: &[u8],
    labels_name: &Path,
    limit: Option<usize>,
) -> Result<Images> {
    images_from_idx(
        parse_idx(images, images_name, limit)?,
        images_name,
        parse_idx(labels, labels_name, limit)?,
        labels_name,
    )
}

/// Images and labels from their IDX arrays: 28x28 images, one label in
/// 0..=9 per image.
fn images_from_idx(images: Idx, ipath: &Path, labels: Idx, lpath: &Path) -> Result<Images> {
    if images.dims.len() != 3 || images.dims[1] != SIDE || images.dims[2] != SIDE {
        return Err(Error::data(
            ipath,
            format!(
                "expected images of shape [n, 28, 28], found {:?}",
                images.dims
            ),
        ));
    }
    if labels.dims.len() != 1 {
        return Err(Error::data(
            lpath,
            format!(
                "expected a 1-D label array, found dimensions {:?}",
                labels.dims
            ),
        ));
    }
    if labels.dims[0] != images.dims[0] {
        return Err(Error::data(
            lpath,
            format!(
                "{} labels but {} images in {}",
                labels.dims[0],
                images.dims[0],
                ipath.display()
            ),
        ));
    }
    if let Some(i) = labels.data.iter().position(|&l| l > 9) {
        return Err(Error::data(
            lpath,
            format!("label {} at index {i} is above 9", labels.data[i]),
        ));
    }
    Ok(Images {
        pixels: images.data,
        labels: labels.data,
    })
}
