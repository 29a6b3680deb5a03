//! The stages a file passes through, in the order data flows: walk (list the inputs) → load
//! (read or map) → expand (containers and views, under budgets) → match (Hyperscan) → ship
//! (windows out of the buffer) → confirm (rule regex, checks) → report (filters, counters).
//! Each stage is testable alone on bytes; `worker` strings load → expand → match → ship
//! together for both the threaded run and `scan_bytes`.

pub mod confirm;
pub mod load;
pub mod matcher;
pub mod report;
pub mod ship;
pub mod walk;
pub mod worker;
