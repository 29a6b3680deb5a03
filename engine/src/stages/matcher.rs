//! The only module that touches Hyperscan: one database for all rules, its on-disk cache,
//! per-thread scratch, and the raw candidates (rule, byte window) a scan produces.
//!
//! Hyperscan reports a rule id and an end offset. The callback only records: each report
//! becomes the window `[end - window_before, end + window_after]` of its rule, merged with the
//! rule's previous window when they touch, so a file with a million triggers yields a few
//! windows, not a million. Judgement (the full regex, entropy, checksums) happens later.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use hyperscan::prelude::*;
use hyperscan::{Block, BlockDatabase, Serialized, Streaming, StreamingDatabase};

use crate::rules::RuleSet;

/// Hyperscan takes a `u32` length: block scans are split below 4 GiB.
const MAX_BLOCK_LEN: usize = 1 << 30;
/// A merged window never grows past this span; a new one starts instead.
const MAX_MERGED_WINDOW: usize = 1 << 20;

/// Errors from building or using the Hyperscan database.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// A rule's trigger does not compile in Hyperscan.
    #[error("rule {id:?} does not compile in Hyperscan: {message}")]
    Compile {
        /// The rule id.
        id: String,
        /// Hyperscan's message.
        message: String,
    },
    /// Any other Hyperscan failure.
    #[error("hyperscan: {0}")]
    Hyperscan(String),
    /// A stream being scanned could not be read further (what was read was scanned).
    #[error("reading input: {0}")]
    Read(std::io::Error),
}

fn hs_err(e: impl std::fmt::Display) -> ScanError {
    ScanError::Hyperscan(e.to_string())
}

/// A byte range of a blob in which one rule may match: `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Window {
    /// Index of the rule in the rule set.
    pub rule: u32,
    /// First byte of the window.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Closed early because merged windows are capped: the next window of the rule overlaps it.
    pub cut_at_end: bool,
}

#[derive(Clone, Copy)]
struct RuleWindow {
    before: u64,
    after: u64,
}

/// The compiled rule set: a block database, and a streaming one built on first use.
pub struct Database {
    block: BlockDatabase,
    streaming: OnceLock<Result<StreamingDatabase, String>>,
    patterns: Patterns,
    windows: Vec<RuleWindow>,
}

impl Database {
    /// Compiles the rules' triggers into one block database, or loads it from `cache_dir`
    /// when a database for the same rules hash and Hyperscan version is there.
    pub fn build(rules: &RuleSet, cache_dir: Option<&Path>) -> Result<Database, ScanError> {
        let patterns = patterns_of(rules)?;
        let windows = rules
            .rules()
            .iter()
            .map(|r| RuleWindow {
                before: u64::from(r.window_before()),
                after: u64::from(r.window_after()),
            })
            .collect();
        let cache_file = cache_dir.map(|dir| cache_path(dir, rules));
        let block = match cache_file.as_deref().and_then(load_cached) {
            Some(db) => db,
            None => {
                let db = compile(&patterns, rules)?;
                if let Some(path) = &cache_file {
                    store_cached(path, &db);
                }
                db
            }
        };
        Ok(Database {
            block,
            streaming: OnceLock::new(),
            patterns,
            windows,
        })
    }

    fn streaming(&self) -> Result<&StreamingDatabase, ScanError> {
        self.streaming
            .get_or_init(|| self.patterns.build::<Streaming>().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| ScanError::Hyperscan(e.clone()))
    }
}

fn patterns_of(rules: &RuleSet) -> Result<Patterns, ScanError> {
    let mut patterns = Vec::with_capacity(rules.len());
    for (i, rule) in rules.rules().iter().enumerate() {
        let mut p = Pattern::new(rule.trigger()).map_err(|e| ScanError::Compile {
            id: rule.id().to_owned(),
            message: e.to_string(),
        })?;
        p.id = Some(i);
        patterns.push(p);
    }
    Ok(Patterns(patterns))
}

fn compile(patterns: &Patterns, rules: &RuleSet) -> Result<BlockDatabase, ScanError> {
    patterns.build::<Block>().map_err(|e| match e {
        hyperscan::Error::Hyperscan(hyperscan::HsError::CompileError(ce)) => {
            let index = ce.expression();
            let id = index
                .and_then(|i| rules.rules().get(i))
                .map_or_else(|| "<unknown>".to_owned(), |r| r.id().to_owned());
            ScanError::Compile {
                id,
                message: ce.message().to_owned(),
            }
        }
        other => hs_err(other),
    })
}

/// Compiles each rule's trigger on its own, to name exactly which rules Hyperscan rejects.
pub fn check_each_rule(rules: &RuleSet) -> Vec<ScanError> {
    rules
        .rules()
        .iter()
        .filter_map(|rule| {
            Pattern::new(rule.trigger())
                .and_then(|p| p.build::<Block>())
                .err()
                .map(|e| ScanError::Compile {
                    id: rule.id().to_owned(),
                    message: e.to_string(),
                })
        })
        .collect()
}

fn cache_path(dir: &Path, rules: &RuleSet) -> PathBuf {
    use sha2::Digest;
    let version = hyperscan::version_str().to_string_lossy();
    let key = format!("{}-{}-{}", rules.content_hash(), version, std::env::consts::ARCH);
    let digest = sha2::Sha256::digest(key.as_bytes());
    dir.join(format!("rules-{}.hsdb", &crate::util::hex(&digest)[..32]))
}

fn load_cached(path: &Path) -> Option<BlockDatabase> {
    let bytes = std::fs::read(path).ok()?;
    match bytes.deserialize::<Block>() {
        Ok(db) => Some(db),
        Err(e) => {
            tracing::warn!("ignoring unusable database cache {}: {e}", path.display());
            None
        }
    }
}

fn store_cached(path: &Path, db: &BlockDatabase) {
    let Ok(bytes) = db.serialize() else { return };
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    // Write then rename, so a concurrent run never reads half a database.
    let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), thread_id_hash()));
    if std::fs::write(&tmp, bytes.as_ref()).is_ok() && std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

fn thread_id_hash() -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::thread::current().id().hash(&mut h);
    h.finish()
}

/// A rule set and its compiled database, shared by every thread.
#[derive(Clone)]
pub struct Compiled {
    /// The rules, in database order.
    pub rules: Arc<RuleSet>,
    /// Their database.
    pub db: Arc<Database>,
}

impl Compiled {
    /// Compiles `rules` (or loads their database from `cache_dir`).
    pub fn build(rules: RuleSet, cache_dir: Option<&Path>) -> Result<Compiled, ScanError> {
        let db = Database::build(&rules, cache_dir)?;
        Ok(Compiled {
            rules: Arc::new(rules),
            db: Arc::new(db),
        })
    }
}

/// One thread's scanner: borrows the shared database and owns its scratch.
pub struct Scanner {
    db: Arc<Database>,
    scratch: Scratch,
    stream_scratch: Option<Scratch>,
    collector: WindowCollector,
}

impl Scanner {
    /// Allocates scratch for the calling thread.
    pub fn new(db: Arc<Database>) -> Result<Scanner, ScanError> {
        let scratch = db.block.alloc_scratch().map_err(hs_err)?;
        let collector = WindowCollector::new(&db.windows);
        Ok(Scanner {
            db,
            scratch,
            stream_scratch: None,
            collector,
        })
    }

    /// Scans a whole buffer; returns the rule windows, sorted, clamped to the buffer.
    pub fn scan(&mut self, data: &[u8]) -> Result<Vec<Window>, ScanError> {
        self.collector.reset();
        let mut base = 0usize;
        // Block scans take a u32 length; overlapping pieces keep matches across a cut.
        let overlap = 64 * 1024;
        loop {
            let end = (base + MAX_BLOCK_LEN).min(data.len());
            let piece = &data[base..end];
            let collector = &mut self.collector;
            let offset = base as u64;
            self.db
                .block
                .scan(piece, &self.scratch, |id: u32, _from: u64, to: u64, _flags: u32| {
                    collector.push(id, offset + to);
                    Matching::Continue
                })
                .map_err(hs_err)?;
            if end == data.len() {
                break;
            }
            base = end - overlap;
        }
        Ok(self.collector.finish(data.len() as u64))
    }

    /// Scans chunks as one stream, handing each chunk back with the triggers (rule, absolute
    /// end offset) reported while scanning it, so the caller can cut windows while the
    /// bytes are still at hand. Triggers reported at the stream's close come with an empty
    /// chunk. `next_chunk` fills the buffer and returns false at the end (or on error).
    pub fn scan_chunks(
        &mut self,
        mut next_chunk: impl FnMut(&mut Vec<u8>) -> bool,
        mut on_chunk: impl FnMut(&[u8], u64, &[(u32, u64)]),
    ) -> Result<u64, ScanError> {
        let db = self.db.streaming()?;
        if self.stream_scratch.is_none() {
            self.stream_scratch = Some(db.alloc_scratch().map_err(hs_err)?);
        }
        let scratch = self
            .stream_scratch
            .as_ref()
            .ok_or_else(|| hs_err("no stream scratch"))?;
        let stream = db.open_stream().map_err(hs_err)?;
        let mut buf = Vec::new();
        let mut triggers = Vec::new();
        let mut total = 0u64;
        loop {
            buf.clear();
            triggers.clear();
            let more = next_chunk(&mut buf);
            stream
                .scan(&buf, scratch, |id: u32, _from: u64, to: u64, _flags: u32| {
                    triggers.push((id, to));
                    Matching::Continue
                })
                .map_err(hs_err)?;
            on_chunk(&buf, total, &triggers);
            total += buf.len() as u64;
            if !more {
                break;
            }
        }
        triggers.clear();
        stream
            .close(scratch, |id: u32, _from: u64, to: u64, _flags: u32| {
                triggers.push((id, to));
                Matching::Continue
            })
            .map_err(hs_err)?;
        on_chunk(&[], total, &triggers);
        Ok(total)
    }

    /// Every rule's window span `(before, after)`, indexed by rule.
    pub fn window_sizes(&self) -> Vec<(u64, u64)> {
        self.db.windows.iter().map(|w| (w.before, w.after)).collect()
    }
}

/// Merged windows for a set of triggers (rule, end offset), clamped to `len` bytes.
pub fn windows_for(sizes: &[(u64, u64)], triggers: &[(u32, u64)], len: u64) -> Vec<Window> {
    let sizes: Vec<RuleWindow> = sizes
        .iter()
        .map(|&(before, after)| RuleWindow { before, after })
        .collect();
    let mut collector = WindowCollector::new(&sizes);
    for &(rule, end) in triggers {
        collector.push(rule, end);
    }
    collector.finish(len)
}

/// Turns trigger end offsets into merged per-rule windows.
struct WindowCollector {
    sizes: Vec<RuleWindow>,
    open: Vec<Option<(u64, u64)>>,
    touched: Vec<u32>,
    done: Vec<Window>,
}

impl WindowCollector {
    fn new(sizes: &[RuleWindow]) -> Self {
        WindowCollector {
            sizes: sizes.to_vec(),
            open: vec![None; sizes.len()],
            touched: Vec::new(),
            done: Vec::new(),
        }
    }

    fn reset(&mut self) {
        for &r in &self.touched {
            self.open[r as usize] = None;
        }
        self.touched.clear();
        self.done.clear();
    }

    fn push(&mut self, rule: u32, end: u64) {
        let Some(size) = self.sizes.get(rule as usize).copied() else {
            return;
        };
        let start = end.saturating_sub(size.before);
        let stop = end.saturating_add(size.after);
        let slot = &mut self.open[rule as usize];
        match slot {
            Some((s, e)) if start <= *e && stop >= *s && (stop.max(*e) - *s) as usize <= MAX_MERGED_WINDOW => {
                *s = (*s).min(start);
                *e = (*e).max(stop);
            }
            Some((s, e)) => {
                self.done.push(Window {
                    rule,
                    start: *s,
                    end: *e,
                    cut_at_end: start < *e,
                });
                *slot = Some((start, stop));
            }
            None => {
                self.touched.push(rule);
                *slot = Some((start, stop));
            }
        }
    }

    fn finish(&mut self, len: u64) -> Vec<Window> {
        for &r in &self.touched {
            if let Some((s, e)) = self.open[r as usize].take() {
                self.done.push(Window {
                    rule: r,
                    start: s,
                    end: e,
                    cut_at_end: false,
                });
            }
        }
        self.touched.clear();
        let mut out = std::mem::take(&mut self.done);
        for w in &mut out {
            w.end = w.end.min(len);
        }
        out.retain(|w| w.start < w.end);
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touching_windows_merge_and_distant_ones_do_not() {
        let mut c = WindowCollector::new(&[RuleWindow { before: 10, after: 5 }]);
        c.push(0, 100);
        c.push(0, 104);
        c.push(0, 500);
        let w = c.finish(1000);
        assert_eq!(
            w,
            vec![
                Window {
                    rule: 0,
                    start: 90,
                    end: 109,
                    cut_at_end: false
                },
                Window {
                    rule: 0,
                    start: 490,
                    end: 505,
                    cut_at_end: false
                }
            ]
        );
    }

    #[test]
    fn windows_are_clamped_to_the_buffer() {
        let mut c = WindowCollector::new(&[RuleWindow { before: 10, after: 50 }]);
        c.push(0, 5);
        assert_eq!(
            c.finish(20),
            vec![Window {
                rule: 0,
                start: 0,
                end: 20,
                cut_at_end: false
            }]
        );
    }

    #[test]
    fn merged_windows_are_capped_and_the_cut_is_marked() {
        let mut c = WindowCollector::new(&[RuleWindow {
            before: 100,
            after: 100,
        }]);
        for end in (1000..3_000_000u64).step_by(150) {
            c.push(0, end);
        }
        let w = c.finish(4_000_000);
        assert!(w.len() >= 3, "{}", w.len());
        assert!(w.iter().all(|w| (w.end - w.start) as usize <= MAX_MERGED_WINDOW));
        assert!(w[..w.len() - 1].iter().all(|w| w.cut_at_end));
        assert!(!w[w.len() - 1].cut_at_end);
        // Consecutive windows overlap, so every trigger's own window lies in one of them.
        assert!(w.windows(2).all(|p| p[1].start < p[0].end));
    }
}
