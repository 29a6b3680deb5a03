//! What is reported of what was found: allowlists, baselines and inline allows, and the one
//! filter (confidence, suppressions, per-place cap) every result path applies.

pub mod suppress;
