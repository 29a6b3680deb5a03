//! A decoded view of a blob: the same content as a rule needs to see it, and where its parts
//! came from.

use super::Excerpt;

/// Bytes decoded from a blob, ready to scan.
#[derive(Debug, Default)]
pub struct View {
    /// The decoder's name, as reported in `location.decoders`.
    pub decoder: &'static str,
    /// The decoded text.
    pub bytes: Vec<u8>,
    /// The ranges of `bytes` that were decoded; `None` when all of it is new.
    pub focus: Option<Vec<(u64, u64)>>,
    /// Where the view's parts came from in the blob, by view offset; empty when parts
    /// cannot be placed (a `.pyc`'s pairs).
    pub origin: Vec<Excerpt>,
}

/// The views of one blob, one level deep.
#[derive(Debug, Default)]
pub struct Views {
    /// The first view holds everything the blob's bytes could show (a parsed `.pyc`'s
    /// constants, each on its own line; a notebook's text): the bytes need not be scanned.
    pub replace_blob: bool,
    /// The views.
    pub list: Vec<View>,
}
