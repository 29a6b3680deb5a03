//! Everything that can fail in the engine, as one error type for the library's callers.

use crate::datastore::DatastoreError;
use crate::rules::RuleError;
use crate::stages::matcher::ScanError;

/// Everything that can fail in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A rule file or rule is invalid.
    #[error(transparent)]
    Rules(#[from] RuleError),
    /// Hyperscan could not compile or scan.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// A file could not be read back.
    #[error("reading input: {0}")]
    Read(std::io::Error),
    /// The datastore failed.
    #[error(transparent)]
    Datastore(#[from] DatastoreError),
    /// The sink failed to write.
    #[error("writing results: {0}")]
    Sink(std::io::Error),
}
