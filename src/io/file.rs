//! Opening a file that a reader needs (data, checkpoints, the classifier,
//! metrics): one place that turns the operating system's refusal into a
//! message saying what is at the path, so a folder where a file should be
//! reads "is a directory, not a file", never "not found".

use std::fs::File;
use std::io::ErrorKind;
use std::path::Path;

use crate::error::{Error, Result};

/// Open `path` for reading; `what` names the file in the error ("checkpoint",
/// "MNIST file"). Refused: a missing path, a directory, anything else the
/// system will not open, each saying which.
pub fn open(path: &Path, what: &str) -> Result<File> {
    if path.is_dir() {
        return Err(Error::data(
            path,
            format!("is a directory, not a file: expected the {what} here"),
        ));
    }
    File::open(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => Error::data(path, format!("{what} not found")),
        _ => Error::data(path, format!("cannot open the {what}: {e}")),
    })
}

/// The whole of `path`, refused as [`open`] refuses it.
pub fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    open(path, what)?
        .read_to_end(&mut bytes)
        .map_err(|e| Error::data(path, format!("cannot read the {what}: {e}")))?;
    Ok(bytes)
}
