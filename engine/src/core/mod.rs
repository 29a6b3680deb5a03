//! The types that cross stages: a finding and its location, where a blob comes from, a decoded
//! view, warnings, the summary and the sink trait. A leaf: it imports only `util`, so every
//! stage can speak these types without importing another stage.

mod confidence;
mod context;
mod finding;
mod package;
mod provenance;
mod report;
mod text_kind;
mod view;

pub use confidence::Confidence;
pub use context::{context_of, PathContext};
pub use finding::{Finding, Location, RuleRef, Validation, ValidationStatus};
pub use package::{normalize_name, parse_filename, Package, PackageKind};
pub use provenance::{excerpt_at, package_of, provenance_of, Excerpt, Provenance};
pub use report::{CollectSink, Sink, Summary, Warning, WarningKind};
pub use text_kind::TextKind;
pub use view::{View, Views};
