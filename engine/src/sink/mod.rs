//! Output formats, each a [`Sink`](crate::core::Sink): pretty text, JSON, JSON Lines and SARIF 2.1.0.

mod json;
mod pretty;
mod sarif;

pub use json::{JsonLinesSink, JsonSink};
pub use pretty::PrettySink;
pub use sarif::SarifSink;

use crate::core::Finding;

/// Applies `--redact` to a finding before it is written.
fn prepared(finding: &Finding, redact: bool) -> std::borrow::Cow<'_, Finding> {
    if redact {
        let mut f = finding.clone();
        f.redact();
        std::borrow::Cow::Owned(f)
    } else {
        std::borrow::Cow::Borrowed(finding)
    }
}
