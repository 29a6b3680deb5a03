//! Threads and bounded channels: enumerate → load + scan workers (each with its own
//! Hyperscan scratch) → validators → the caller's sink. Bounded channels give backpressure,
//! so memory is a budget, not luck.

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam::channel::{bounded, Receiver, Sender};

use crate::enumerate::{io_warning, walk, warning, Enumerated, FileJob, Filters};
use crate::finding::Finding;
use crate::load::{open, LoadPolicy, Loaded};
use crate::report::{Sink, Summary, Warning, WarningKind};
use crate::rules::Confidence;
use crate::scan::{Scanner, Window};
use crate::suppress::Suppressions;
use crate::unpack::{read_full, sniff, Budget, Format, UnpackStats, Unpacker, Visitor};
use crate::validate::{CandidateBatch, Provenance, ShippedWindow, Validator};
use crate::{Engine, Error};

/// How a path scan runs.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Scan worker threads (0: one per core).
    pub threads: usize,
    /// Include/exclude globs and size limit.
    pub filters: Filters,
    /// How files are read.
    pub load: LoadPolicy,
    /// Findings below this confidence are counted, not reported.
    pub min_confidence: Confidence,
    /// Open archives and compressed streams, under this budget; `None` scans them raw.
    pub archives: Option<Budget>,
    /// Decoded views (`.pyc` pairs, UTF-16, base64, hex, escapes, percent-encoding) are
    /// chained up to this depth; 0 scans bytes only as they are.
    pub decode_depth: u32,
    /// Findings of one rule reported per file before the rest are only counted (with a
    /// warning): a generated or hostile file must not turn the report into gigabytes.
    pub max_findings_per_file_and_rule: Option<u64>,
    /// Allowlist and baseline; inline `keysweep:allow` comments always apply.
    pub suppressions: Arc<Suppressions>,
    /// Set (from a signal handler, say) to stop: no new file is started, and what was found
    /// is still reported.
    pub cancel: Arc<AtomicBool>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            threads: 0,
            filters: Filters::default(),
            load: LoadPolicy::default(),
            min_confidence: Confidence::Medium,
            archives: Some(Budget::default()),
            decode_depth: crate::views::DEFAULT_DEPTH,
            max_findings_per_file_and_rule: Some(1000),
            suppressions: Arc::default(),
            cancel: Arc::default(),
        }
    }
}

enum Event {
    Findings(Vec<Finding>),
    Warning(Warning),
    Scanned { bytes: u64 },
    Unpacked(UnpackStats),
    Filtered,
    OtherShard,
    SymlinkSkipped,
}

/// Window bytes per batch sent to the validators: with the bounded batch channel, this caps
/// the memory that candidates of one dense file can hold.
const BATCH_BYTES: usize = 4 << 20;

/// Groups shipped windows into batches of at most `BATCH_BYTES` and hands each to `emit`.
struct Batcher<'a> {
    pending: Vec<ShippedWindow>,
    bytes: usize,
    emit: &'a mut dyn FnMut(Vec<ShippedWindow>),
}

impl Batcher<'_> {
    fn push(&mut self, window: ShippedWindow) {
        self.bytes += window.bytes.len();
        self.pending.push(window);
        if self.bytes >= BATCH_BYTES {
            self.flush();
        }
    }
    fn flush(&mut self) {
        if !self.pending.is_empty() {
            (self.emit)(std::mem::take(&mut self.pending));
            self.bytes = 0;
        }
    }
}

/// Where a buffer sits in its blob: the offset of its first byte, and the line (1-based)
/// and line-start offset at that byte.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Base {
    pub offset: u64,
    pub line: u64,
    pub line_start: u64,
}

impl Base {
    /// The start of a blob.
    pub const START: Base = Base {
        offset: 0,
        line: 1,
        line_start: 0,
    };

    /// The position after `bytes`, which follow this one.
    fn advanced(self, bytes: &[u8]) -> Base {
        let line = self.line + memchr::memchr_iter(b'\n', bytes).count() as u64;
        let line_start = memchr::memrchr(b'\n', bytes).map_or(self.line_start, |nl| self.offset + nl as u64 + 1);
        Base {
            offset: self.offset + bytes.len() as u64,
            line,
            line_start,
        }
    }
}

/// Copies each window out of `data` (plus one byte of leading context), numbers its lines,
/// and emits them in bounded batches. `data` starts at `base` in its blob; windows carry
/// blob offsets and must lie inside `data` (one byte before it may be missing).
pub(crate) fn ship(data: &[u8], base: Base, mut windows: Vec<Window>, emit: &mut dyn FnMut(Vec<ShippedWindow>)) {
    windows.sort_unstable_by_key(|w| (w.start, w.rule));
    let mut batcher = Batcher {
        pending: Vec::new(),
        bytes: 0,
        emit,
    };
    let mut at = base;
    for w in windows {
        let rel = |off: u64| (off.saturating_sub(base.offset) as usize).min(data.len());
        let (start, end) = (rel(w.start), rel(w.end));
        // Windows arrive sorted by start: count newlines once, incrementally.
        let counted = rel(at.offset);
        if start > counted {
            at = at.advanced(&data[counted..start]);
        }
        let lead = usize::from(start > 0);
        batcher.push(ShippedWindow {
            rule: w.rule,
            start: base.offset + start as u64,
            lead,
            bytes: data[start - lead..end].to_vec(),
            cut_at_end: w.cut_at_end,
            line_at_start: at.line,
            line_start_offset: at.line_start,
        });
    }
    batcher.flush();
}

fn read_at_most(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Bytes of a streamed member held back for windows that reach before a chunk.
const STREAM_KEEP: u64 = crate::rules::MAX_WINDOW as u64 + 1;
/// Chunk size of streamed archive members.
const MEMBER_CHUNK: usize = 1 << 20;

/// Scans a reader of unknown length through Hyperscan's streaming mode, cutting windows
/// while the bytes are at hand: memory stays at a chunk plus the context windows need,
/// however long the stream. Returns the bytes read; a read error ends the stream (what was
/// read is scanned) and is returned after shipping.
fn scan_reader(
    scanner: &mut Scanner,
    reader: &mut dyn Read,
    chunk: usize,
    emit: &mut dyn FnMut(Vec<ShippedWindow>),
) -> Result<u64, Error> {
    let sizes = scanner.window_sizes();
    let size = |rule: u32| sizes.get(rule as usize).copied().unwrap_or((0, 0));
    let mut held: Vec<u8> = Vec::new();
    let mut base = Base::START;
    let mut pending: Vec<(u32, u64)> = Vec::new();
    let mut read_error = None;
    let total = scanner.scan_chunks(
        |buf| {
            buf.resize(chunk, 0);
            match read_full(reader, buf) {
                Ok(n) => {
                    buf.truncate(n);
                    n == chunk
                }
                Err(e) => {
                    buf.clear();
                    read_error = Some(e);
                    false
                }
            }
        },
        |data, _start, triggers| {
            let last = data.is_empty();
            held.extend_from_slice(data);
            pending.extend_from_slice(triggers);
            let held_end = base.offset + held.len() as u64;
            let ready = if last {
                std::mem::take(&mut pending)
            } else {
                take_ready(&mut pending, held_end, &size)
            };
            if !ready.is_empty() {
                let windows = crate::scan::windows_for(&sizes, &ready, held_end);
                ship(&held, base, windows, emit);
            }
            // Keep what later windows may reach back into; count the lines of what goes.
            let keep_from = pending
                .iter()
                .map(|&(rule, end)| end.saturating_sub(size(rule).0 + 1))
                .chain(std::iter::once(held_end.saturating_sub(STREAM_KEEP)))
                .min()
                .unwrap_or(held_end)
                .max(base.offset);
            let drop = (keep_from - base.offset) as usize;
            if drop > 0 {
                base = base.advanced(&held[..drop]);
                held.drain(..drop);
            }
        },
    )?;
    match read_error {
        Some(e) => Err(Error::Read(e)),
        None => Ok(total),
    }
}

/// Removes and returns the triggers whose windows are final: no trigger still to come can
/// merge into them. A rule's triggers whose windows chain into one that is not final wait
/// with it, so the same match is never confirmed in two windows of two batches.
fn take_ready(pending: &mut Vec<(u32, u64)>, held_end: u64, size: &dyn Fn(u32) -> (u64, u64)) -> Vec<(u32, u64)> {
    pending.sort_unstable();
    let mut ready = Vec::new();
    let mut waiting = Vec::new();
    for group in pending.chunk_by(|a, b| a.0 == b.0) {
        let (before, after) = size(group[0].0);
        // Later triggers end past `held_end`: their windows start at `held_end - before` or later.
        let mut cut = group
            .iter()
            .position(|&(_, end)| end + after + before >= held_end)
            .unwrap_or(group.len());
        while cut > 0 && cut < group.len() && group[cut].1.saturating_sub(before) <= group[cut - 1].1 + after {
            cut -= 1;
        }
        ready.extend_from_slice(&group[..cut]);
        waiting.extend_from_slice(&group[cut..]);
    }
    *pending = waiting;
    ready
}

/// What a worker hands the unpacker: scanning of members, and warnings.
struct MemberScanner<'a> {
    scanner: &'a mut Scanner,
    events: &'a Sender<Event>,
    batches: &'a Sender<CandidateBatch>,
}

/// Sends a blob's windows to the validators, batch by batch, under its provenance.
fn emitter<'a>(batches: &'a Sender<CandidateBatch>, provenance: &Provenance) -> impl FnMut(Vec<ShippedWindow>) + 'a {
    let provenance = Arc::new(provenance.clone());
    move |windows| {
        let _ = batches.send(CandidateBatch {
            provenance: Arc::clone(&provenance),
            windows,
        });
    }
}

impl Visitor for MemberScanner<'_> {
    fn blob(&mut self, provenance: &Provenance, data: &[u8]) {
        match self.scanner.scan(data) {
            Ok(windows) if windows.is_empty() => {}
            Ok(windows) => ship(data, Base::START, windows, &mut emitter(self.batches, provenance)),
            Err(e) => self.warn(provenance, WarningKind::Unreadable, e.to_string()),
        }
    }

    fn stream(&mut self, provenance: &Provenance, reader: &mut dyn Read) -> std::io::Result<u64> {
        scan_reader(
            self.scanner,
            reader,
            MEMBER_CHUNK,
            &mut emitter(self.batches, provenance),
        )
        .map_err(|e| match e {
            Error::Read(io) => io,
            other => std::io::Error::other(other.to_string()),
        })
    }

    fn warn(&mut self, provenance: &Provenance, kind: WarningKind, message: String) {
        let mut path = provenance.path.clone();
        for m in &provenance.members {
            path.push('!');
            path.push_str(m);
        }
        let _ = self.events.send(Event::Warning(Warning { kind, path, message }));
    }
}

/// One scan worker: its scanner (with its scratch) and its reused read buffer.
struct Worker {
    scanner: Scanner,
    buf: Vec<u8>,
    load: LoadPolicy,
    archives: Option<Budget>,
    decode_depth: u32,
}

impl Worker {
    fn scan_job(&mut self, job: &FileJob, events: &Sender<Event>, batches: &Sender<CandidateBatch>) {
        let warn = |w: Warning| {
            let _ = events.send(Event::Warning(w));
        };
        let (loaded, listed_len) = match open(&job.path, &self.load, &mut self.buf) {
            Ok(x) => x,
            Err(e) => return warn(io_warning(&job.path, &e)),
        };
        let provenance = Provenance::file(crate::enumerate::display(&job.path));
        let mut members = MemberScanner {
            scanner: &mut self.scanner,
            events,
            batches,
        };
        let mut stats = UnpackStats::default();
        let decode_depth = self.decode_depth;
        // Without archives, the unpacker still decodes views; it opens nothing at depth 0.
        let budget = self.archives.unwrap_or(Budget {
            max_depth: 0,
            ..Budget::default()
        });
        let mut unpack = |data: &[u8], members: &mut MemberScanner<'_>| {
            let mut unpacker = Unpacker::new(budget, decode_depth, data.len() as u64, members);
            unpacker.blob(data, &provenance, 0);
            stats = unpacker.stats;
        };
        let result: Result<u64, Error> = match loaded {
            Loaded::Buffered => {
                let len = self.buf.len() as u64;
                if len != listed_len {
                    warn(warning(
                        WarningKind::Changed,
                        &job.path,
                        format!("size changed from {listed_len} to {len} bytes while opening; scanned {len}"),
                    ));
                }
                unpack(&self.buf, &mut members);
                Ok(len)
            }
            Loaded::Mapped(map) => {
                unpack(&map, &mut members);
                Ok(map.len() as u64)
            }
            Loaded::Streamed(mut file) => {
                let mut head = vec![0u8; crate::unpack::SNIFF_LEN];
                let n = read_at_most(&file, &mut head, 0).unwrap_or(0);
                let format = sniff(&head[..n]);
                match (self.archives, format) {
                    (Some(_), Format::Zip) if !self.load.mmap => {
                        warn(warning(
                            WarningKind::BudgetExceeded,
                            &job.path,
                            "a zip over the mapping size with --no-mmap: not opened, scanned as raw bytes",
                        ));
                        let mut emit = emitter(batches, &provenance);
                        scan_reader(
                            members.scanner,
                            &mut BufReader::new(&mut file),
                            self.load.chunk,
                            &mut emit,
                        )
                    }
                    (Some(_), Format::Zip) => {
                        // Zip needs random access: map it, however large.
                        // SAFETY: as in `load::open`, read-only and private to this worker.
                        match unsafe { memmap2::Mmap::map(&file) } {
                            Ok(map) => {
                                unpack(&map, &mut members);
                                Ok(map.len() as u64)
                            }
                            Err(e) => Err(Error::Read(e)),
                        }
                    }
                    (Some(budget), f) if f != Format::Plain => {
                        let mut unpacker = Unpacker::new(budget, self.decode_depth, listed_len, &mut members);
                        unpacker.top_reader(f, Box::new(BufReader::new(&mut file)), listed_len, &provenance);
                        stats = unpacker.stats;
                        Ok(listed_len)
                    }
                    _ => {
                        let mut emit = emitter(batches, &provenance);
                        let outcome = scan_reader(
                            members.scanner,
                            &mut BufReader::new(&mut file),
                            self.load.chunk,
                            &mut emit,
                        );
                        if let Err(Error::Read(e)) = &outcome {
                            warn(warning(
                                WarningKind::Unreadable,
                                &job.path,
                                format!("read failed ({e}); scanned what was read"),
                            ));
                            Ok(listed_len)
                        } else {
                            outcome
                        }
                    }
                }
            }
        };
        match result {
            Ok(bytes) => {
                let _ = events.send(Event::Scanned { bytes });
                if stats.archives > 0 || stats.budget_hits > 0 || stats.corrupt > 0 {
                    let _ = events.send(Event::Unpacked(stats));
                }
            }
            Err(e) => warn(warning(WarningKind::Unreadable, &job.path, e.to_string())),
        }
    }
}

/// Runs a whole scan of `inputs` into `sink`.
pub(crate) fn run(
    engine: &Engine,
    inputs: &[PathBuf],
    options: &ScanOptions,
    sink: &mut dyn Sink,
) -> Result<Summary, Error> {
    let started = Instant::now();
    let threads = if options.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        options.threads
    };
    let validators = (threads / 2).max(1);
    let stop = &*options.cancel;
    let (job_tx, job_rx) = bounded::<FileJob>(4096);
    let (batch_tx, batch_rx) = bounded::<CandidateBatch>(32);
    let (event_tx, event_rx) = bounded::<Event>(4096);

    // Scratch is allocated up front so a failure is an error, not a silent thread exit.
    let mut workers = Vec::with_capacity(threads);
    for _ in 0..threads {
        workers.push(Worker {
            scanner: Scanner::new(Arc::clone(&engine.db))?,
            buf: Vec::new(),
            load: options.load,
            archives: options.archives,
            decode_depth: options.decode_depth,
        });
    }

    let mut summary = Summary::default();
    let mut sink_error = None;
    std::thread::scope(|scope| {
        let events = event_tx.clone();
        let stop_ref = stop;
        scope.spawn(move || {
            for input in inputs {
                let mut emit = |item: Enumerated| {
                    if stop_ref.load(Ordering::Relaxed) {
                        return false;
                    }
                    match item {
                        Enumerated::File(job) => job_tx.send(job).is_ok(),
                        Enumerated::Warning(w) => events.send(Event::Warning(w)).is_ok(),
                        Enumerated::Filtered => events.send(Event::Filtered).is_ok(),
                        Enumerated::OtherShard => events.send(Event::OtherShard).is_ok(),
                        Enumerated::SymlinkSkipped => events.send(Event::SymlinkSkipped).is_ok(),
                    }
                };
                walk(input, &options.filters, &mut emit);
                if stop_ref.load(Ordering::Relaxed) {
                    break;
                }
            }
        });
        for mut worker in workers {
            let jobs: Receiver<FileJob> = job_rx.clone();
            let events = event_tx.clone();
            let batches = batch_tx.clone();
            scope.spawn(move || {
                for job in jobs {
                    if stop_ref.load(Ordering::Relaxed) {
                        break;
                    }
                    worker.scan_job(&job, &events, &batches);
                }
            });
        }
        drop(batch_tx);
        for _ in 0..validators {
            let batches = batch_rx.clone();
            let events = event_tx.clone();
            let validator = Validator::new(Arc::clone(&engine.rules));
            scope.spawn(move || {
                for batch in batches {
                    let findings = validator.confirm(&batch);
                    if !findings.is_empty() && events.send(Event::Findings(findings)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(batch_rx);
        drop(event_tx);
        drop(job_rx);

        let mut reporter = Reporter {
            min: options.min_confidence,
            suppressions: &options.suppressions,
            cap: options.max_findings_per_file_and_rule.unwrap_or(u64::MAX),
            summary: &mut summary,
            per_place: HashMap::new(),
        };
        let mut stopped = false;
        let mut last_progress = Instant::now();
        if let Err(e) = sink.begin() {
            sink_error = Some(e);
            stopped = true;
        }
        for event in &event_rx {
            if stopped {
                // Drain so producers finish; the sink has said it wants nothing more.
                stop.store(true, Ordering::Relaxed);
                continue;
            }
            let reduced = reporter.reduce(event, sink);
            if last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = Instant::now();
                reporter.summary.elapsed = started.elapsed();
                sink.progress(reporter.summary);
            }
            match reduced {
                Ok(true) => {}
                Ok(false) => stopped = true,
                Err(e) => {
                    sink_error = Some(e);
                    stopped = true;
                }
            }
        }
    });
    summary.elapsed = started.elapsed();
    summary.interrupted = stop.load(Ordering::Relaxed) && sink_error.is_none();
    if let Some(e) = sink_error {
        return Err(Error::Sink(e));
    }
    sink.finish(&summary).map_err(Error::Sink)?;
    Ok(summary)
}

/// How often the sink hears the counters while a scan runs.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The reporting end of the pipeline: confidence filter, per-file cap, counters.
struct Reporter<'a> {
    min: Confidence,
    suppressions: &'a Suppressions,
    cap: u64,
    summary: &'a mut Summary,
    per_place: HashMap<(String, String), u64>,
}

impl Reporter<'_> {
    fn reduce(&mut self, event: Event, sink: &mut dyn Sink) -> std::io::Result<bool> {
        let summary = &mut *self.summary;
        match event {
            Event::Findings(findings) => {
                for f in &findings {
                    if f.confidence < self.min {
                        summary.findings_below_threshold += 1;
                        continue;
                    }
                    if let Some(reason) = self.suppressions.reason(f) {
                        *summary.findings_suppressed.entry(reason.as_str()).or_default() += 1;
                        continue;
                    }
                    let count = self
                        .per_place
                        .entry((f.location.display_path(), f.rule.id.clone()))
                        .or_default();
                    *count += 1;
                    if *count > self.cap {
                        summary.findings_over_cap += 1;
                        if *count == self.cap + 1 {
                            let w = Warning {
                                kind: WarningKind::FindingsCapped,
                                path: f.location.display_path(),
                                message: format!(
                                    "more than {} findings of {}: the rest are counted, not reported",
                                    self.cap, f.rule.id
                                ),
                            };
                            *summary.warnings.entry(w.kind.as_str()).or_default() += 1;
                            sink.warning(&w)?;
                        }
                        continue;
                    }
                    summary.findings += 1;
                    *summary.findings_per_rule.entry(f.rule.id.clone()).or_default() += 1;
                    if !sink.finding(f)? {
                        return Ok(false);
                    }
                }
            }
            Event::Warning(w) => {
                *summary.warnings.entry(w.kind.as_str()).or_default() += 1;
                sink.warning(&w)?;
            }
            Event::Scanned { bytes } => {
                summary.files_scanned += 1;
                summary.bytes_scanned += bytes;
            }
            Event::Unpacked(stats) => {
                summary.archives_opened += stats.archives;
                summary.members_scanned += stats.members;
                summary.bytes_unpacked += stats.bytes_unpacked;
                summary.budget_hits += stats.budget_hits;
                summary.corrupt_inputs += stats.corrupt;
            }
            Event::Filtered => summary.files_filtered += 1,
            Event::OtherShard => summary.files_other_shard += 1,
            Event::SymlinkSkipped => summary.symlinks_skipped += 1,
        }
        Ok(true)
    }
}
