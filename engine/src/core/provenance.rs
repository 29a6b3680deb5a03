//! Where a blob comes from: the file on disk, the members inside it, the decoders applied,
//! and for a decoded view, which of its bytes are new and where they sit in the blob.

use std::sync::Arc;

use super::package::{parse_filename, Package};
use super::View;

/// Where a blob comes from, as reported in findings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Provenance {
    /// The file on disk.
    pub path: String,
    /// Archive members, outermost first.
    pub members: Vec<String>,
    /// Decoders applied.
    pub decoders: Vec<String>,
    /// The release the file is, when its name is a wheel, sdist or egg name.
    pub package: Option<Package>,
    /// In a decoded view, the byte ranges that were decoded: findings must touch one
    /// (the rest of the view repeats the original, already scanned).
    pub focus: Option<Arc<Vec<(u64, u64)>>>,
    /// In a decoded view, where its parts came from: findings are placed at the encoded
    /// bytes of the blob (see [`Excerpt`]).
    pub origin: Option<Arc<Vec<Excerpt>>>,
}

impl Provenance {
    /// A file on disk; a release file name (wheel, sdist, egg) sets the package.
    pub fn file(path: impl Into<String>) -> Self {
        let path = path.into();
        let package = path.rsplit('/').next().and_then(parse_filename);
        Provenance {
            path,
            package,
            ..Provenance::default()
        }
    }

    /// A decoded view of this blob (`pyc`, `base64`, …).
    pub fn decoded(&self, decoder: &str) -> Self {
        let mut view = self.clone();
        view.decoders.push(decoder.to_owned());
        view.focus = None;
        view.origin = None;
        view
    }

    /// A member inside this blob. The package stays the outermost release file: the
    /// artefact that was published (a vendored wheel inside an sdist is that sdist's).
    pub fn child(&self, member: String) -> Self {
        let mut child = self.clone();
        child.focus = None;
        child.origin = None;
        if child.package.is_none() {
            child.package = member.rsplit('/').next().and_then(parse_filename);
        }
        child.members.push(member);
        child
    }
}

/// The release a place belongs to: the file on disk when its name is a release, else the
/// outermost member that is one (as [`Provenance::child`] decides while unpacking).
pub fn package_of(path: &str, members: &[String]) -> Option<Package> {
    std::iter::once(path)
        .chain(members.iter().map(String::as_str))
        .find_map(|p| p.rsplit('/').next().and_then(parse_filename))
}

/// A part of a view and the encoded bytes of the blob it was decoded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Excerpt {
    /// Where the part starts in the view (it ends where the next begins).
    pub view_start: u64,
    /// The encoded bytes in the blob.
    pub blob_start: u64,
    /// End of the encoded bytes.
    pub blob_end: u64,
    /// 1-based line of `blob_start` in the blob.
    pub line: u64,
    /// 1-based byte column of `blob_start`.
    pub column: u64,
}

/// The excerpt holding view offset `at`.
pub fn excerpt_at(origin: &[Excerpt], at: u64) -> Option<&Excerpt> {
    let after = origin.partition_point(|e| e.view_start <= at);
    after.checked_sub(1).map(|i| &origin[i])
}

/// The provenance of `view`, a view of a blob from `parent`: its decoder added, and its
/// excerpts placed in the outermost blob that can be placed.
pub fn provenance_of(parent: &Provenance, view: &View) -> Provenance {
    let mut child = parent.decoded(view.decoder);
    let mut focus = view.focus.clone();
    // In a view that repeats its blob's bytes around what it decoded, runs in the repeated
    // bytes were decoded from the blob itself already: only what lies in the parent's
    // decoded ranges is new.
    if let Some(outer) = &parent.focus {
        let new = |e: &Excerpt| outer.iter().any(|&(s, t)| e.blob_start < t && s < e.blob_end);
        match &mut focus {
            Some(spans) => spans.retain(|&(s, _)| excerpt_at(&view.origin, s).is_some_and(new)),
            None if !view.origin.is_empty() && !view.origin.iter().any(new) => focus = Some(Vec::new()),
            None => {}
        }
    }
    child.focus = focus.map(Arc::new);
    child.origin = match (&parent.origin, view.origin.is_empty()) {
        (_, true) => None,
        // In the blob itself, or in a view that cannot be placed (a `.pyc`'s): place there.
        (None, false) => Some(Arc::new(view.origin.clone())),
        // Each excerpt lies in an excerpt of the parent: report that one, in the blob.
        (Some(outer), false) => Some(Arc::new(
            view.origin
                .iter()
                .filter_map(|e| {
                    excerpt_at(outer, e.blob_start).map(|o| Excerpt {
                        view_start: e.view_start,
                        ..*o
                    })
                })
                .collect(),
        )),
    };
    child
}
