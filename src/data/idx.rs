//! IDX files (the MNIST format), plain or gzip-compressed.
//!
//! An IDX file is a 4-byte magic `00 00 TT DD` (TT the element type, DD the
//! number of dimensions), DD big-endian u32 sizes, then the elements. Only
//! unsigned bytes (TT = 0x08) occur in MNIST and Fashion-MNIST, and only
//! those are read. Gzip is detected by its magic bytes, not the file name.
//!
//! Corruption is caught, not loaded: a gzip file is decompressed to its
//! end (every member), so its CRC-32 and length are checked even when only
//! the first items are wanted, and the data must be exactly as long as the
//! header promises. Memory grows with the bytes actually read, never with
//! a size a header claims.

use std::io::{BufReader, ErrorKind, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::{Error, Result};

/// An IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Idx {
    /// Sizes of every dimension as stored in the file; `dims[0]` is the
    /// number of items, reduced to what was read when a limit was given.
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

const UBYTE: u8 = 0x08;

/// Read an IDX file of unsigned bytes, at most `limit` items (the first
/// dimension) when given. Every failure names the file and the problem.
pub fn read_idx(path: &Path, limit: Option<usize>) -> Result<Idx> {
    let file = crate::io::file::open(path, "IDX file")?;
    read_source(BufReader::new(file), path, limit)
}

/// [`read_idx`] of a file's bytes already in memory (a browser fetches
/// them); `name` (a file name or URL) names it in errors.
pub fn parse_idx(bytes: &[u8], name: &Path, limit: Option<usize>) -> Result<Idx> {
    read_source(bytes, name, limit)
}

/// An IDX stream, gzipped or plain (told by its first two bytes).
fn read_source(mut raw: impl Read, path: &Path, limit: Option<usize>) -> Result<Idx> {
    let mut head = [0u8; 2];
    read_exact(&mut raw, &mut head, path, "the header")?;
    let rest = std::io::Cursor::new(head).chain(raw);
    if head == [0x1f, 0x8b] {
        read_stream(MultiGzDecoder::new(rest), path, limit)
    } else {
        read_stream(rest, path, limit)
    }
}

fn gzip_error(path: &Path, what: &str, e: &std::io::Error) -> Error {
    Error::data(
        path,
        format!("corrupt gzip stream while reading {what}: {e}"),
    )
}

fn read_exact(r: &mut impl Read, buf: &mut [u8], path: &Path, what: &str) -> Result<()> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        ErrorKind::UnexpectedEof => {
            Error::data(path, format!("truncated: file ends inside {what}"))
        }
        ErrorKind::InvalidInput | ErrorKind::InvalidData => gzip_error(path, what, &e),
        _ => Error::data(path, format!("read error in {what}: {e}")),
    })
}

fn read_stream(mut r: impl Read, path: &Path, limit: Option<usize>) -> Result<Idx> {
    let mut magic = [0u8; 4];
    read_exact(&mut r, &mut magic, path, "the magic number")?;
    if magic[0] != 0 || magic[1] != 0 || magic[3] == 0 {
        return Err(Error::data(
            path,
            format!(
                "wrong magic number 0x{:08x}: not an IDX file",
                u32::from_be_bytes(magic)
            ),
        ));
    }
    if magic[2] != UBYTE {
        return Err(Error::data(
            path,
            format!(
                "IDX element type 0x{:02x} is not unsigned byte (0x08)",
                magic[2]
            ),
        ));
    }
    let ndim = magic[3] as usize;
    let mut dims = Vec::with_capacity(ndim);
    for d in 0..ndim {
        let mut b = [0u8; 4];
        read_exact(&mut r, &mut b, path, &format!("the size of dimension {d}"))?;
        dims.push(u32::from_be_bytes(b) as usize);
    }
    let count = limit.map_or(dims[0], |l| l.min(dims[0]));
    let absurd = || Error::data(path, format!("absurd dimensions {dims:?}"));
    // Checked: a wrapped product (e.g. 2^31 * 2^31 * 4 = 0 in 64 bits) would
    // accept a file whose data does not fill its dimensions.
    let item = dims[1..]
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(absurd)?;
    let want = count.checked_mul(item).ok_or_else(absurd)?;
    let total = dims[0].checked_mul(item).ok_or_else(absurd)?;
    let truncated = || {
        Error::data(
            path,
            format!(
                "truncated: header promises {} items of {item} bytes",
                dims[0]
            ),
        )
    };
    let read_err = |e: std::io::Error| match e.kind() {
        ErrorKind::InvalidInput | ErrorKind::InvalidData => gzip_error(path, "the data", &e),
        _ => Error::data(path, format!("corrupt data ({e})")),
    };
    // Grows with what arrives: a header claiming gigabytes allocates nothing.
    let mut data = Vec::new();
    (&mut r)
        .take(want as u64)
        .read_to_end(&mut data)
        .map_err(read_err)?;
    if data.len() < want {
        return Err(truncated());
    }
    // The rest, to the end: the gzip trailer's CRC and length are checked
    // there, and the data must end where the header says.
    let rest = std::io::copy(&mut r, &mut std::io::sink()).map_err(read_err)?;
    let expected_rest = (total - want) as u64;
    if rest < expected_rest {
        return Err(truncated());
    }
    if rest > expected_rest {
        return Err(Error::data(
            path,
            format!(
                "{} bytes after the {} items of {item} bytes the header promises",
                rest - expected_rest,
                dims[0]
            ),
        ));
    }
    dims[0] = count;
    Ok(Idx { dims, data })
}

/// Write `data` (unsigned bytes, `dims` row-major, e.g. `[n, 28, 28]`) as
/// a plain IDX file, atomically (temporary file, then rename).
pub fn write_idx(path: &Path, dims: &[usize], data: &[u8]) -> Result<()> {
    let count: usize = dims.iter().product();
    if dims.is_empty() || dims.len() > 255 || count != data.len() {
        return Err(Error::data(
            path,
            format!("{} bytes do not fill IDX dimensions {dims:?}", data.len()),
        ));
    }
    let mut bytes = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    bytes.extend_from_slice(&[0, 0, UBYTE, dims.len() as u8]);
    for &d in dims {
        let d = u32::try_from(d)
            .map_err(|_| Error::data(path, format!("IDX dimension {d} exceeds u32")))?;
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    crate::io::write_atomic(path, &bytes)
}
