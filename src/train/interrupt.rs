//! Ctrl-C and SIGTERM during training. The first asks the epoch loop to
//! stop after the submits in flight and save a checkpoint it can resume
//! from (bit-identically, mid-epoch included); the second exits at once.
//!
//! The handler is the process's: the examples install it (a library that
//! only trains never takes over the process's signals on its own).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use crate::error::{Error, Result};

static REQUESTS: AtomicUsize = AtomicUsize::new(0);
static INSTALLED: OnceLock<std::result::Result<(), String>> = OnceLock::new();

/// Exit status of a second Ctrl-C (128 + SIGINT, as shells report it).
pub const EXIT_AT_ONCE: i32 = 130;

/// Install the handler for SIGINT and SIGTERM (once per process).
pub fn install() -> Result<()> {
    INSTALLED
        .get_or_init(|| {
            ctrlc::set_handler(|| {
                if REQUESTS.fetch_add(1, Ordering::SeqCst) == 0 {
                    eprintln!(
                        "\ninterrupted: finishing the steps in flight, then saving a \
                         checkpoint (press Ctrl-C again to exit at once)"
                    );
                } else {
                    eprintln!("interrupted again: exiting without saving");
                    std::process::exit(EXIT_AT_ONCE);
                }
            })
            .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| {
            Error::invalid(
                "interrupt",
                format!("cannot install the Ctrl-C handler: {e}"),
            )
        })
}

/// Whether a stop has been asked for.
pub fn requested() -> bool {
    REQUESTS.load(Ordering::SeqCst) > 0
}

/// Ask for a stop, as Ctrl-C does (for callers that stop runs themselves).
pub fn request() {
    REQUESTS.fetch_add(1, Ordering::SeqCst);
}

/// Forget an earlier request (before starting another run in-process).
pub fn clear() {
    REQUESTS.store(0, Ordering::SeqCst);
}
