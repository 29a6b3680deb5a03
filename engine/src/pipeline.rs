//! Threads and bounded channels: enumerate → load + scan workers (each with its own
//! Hyperscan scratch) → validators → the caller's sink. Bounded channels give backpressure,
//! so memory is a budget, not luck.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek};
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
    /// Findings of one rule reported per file before the rest are only counted (with a
    /// warning): a generated or hostile file must not turn the report into gigabytes.
    pub max_findings_per_file_and_rule: Option<u64>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            threads: 0,
            filters: Filters::default(),
            load: LoadPolicy::default(),
            min_confidence: Confidence::Medium,
            max_findings_per_file_and_rule: Some(1000),
        }
    }
}

enum Event {
    Findings(Vec<Finding>),
    Warning(Warning),
    Scanned { bytes: u64 },
    Filtered,
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

/// Copies each window out of `data` (plus one byte of leading context), numbers its lines,
/// and emits them in bounded batches.
pub(crate) fn ship(data: &[u8], mut windows: Vec<Window>, emit: &mut dyn FnMut(Vec<ShippedWindow>)) {
    windows.sort_unstable_by_key(|w| (w.start, w.rule));
    let mut batcher = Batcher {
        pending: Vec::new(),
        bytes: 0,
        emit,
    };
    let (mut line, mut line_start, mut counted_to) = (1u64, 0u64, 0usize);
    for w in windows {
        let start = (w.start as usize).min(data.len());
        let end = (w.end as usize).min(data.len());
        // Windows arrive sorted by start: count newlines once, incrementally.
        let region = &data[counted_to..start];
        line += memchr::memchr_iter(b'\n', region).count() as u64;
        if let Some(nl) = memchr::memrchr(b'\n', region) {
            line_start = (counted_to + nl + 1) as u64;
        }
        counted_to = start;
        let lead = usize::from(start > 0);
        batcher.push(ShippedWindow {
            rule: w.rule,
            start: start as u64,
            lead,
            bytes: data[start - lead..end].to_vec(),
            cut_at_end: w.cut_at_end,
            line_at_start: line,
            line_start_offset: line_start,
        });
    }
    batcher.flush();
}

/// Re-reads a streamed file once, sequentially, to number lines, and copies out its windows
/// in bounded batches. A read error ends the pass: the windows read so far are kept.
fn ship_from_file(
    file: &mut std::fs::File,
    mut windows: Vec<Window>,
    emit: &mut dyn FnMut(Vec<ShippedWindow>),
) -> std::io::Result<()> {
    windows.sort_unstable_by_key(|w| (w.start, w.rule));
    let mut batcher = Batcher {
        pending: Vec::new(),
        bytes: 0,
        emit,
    };
    let result = (|| {
        file.rewind()?;
        let mut reader = BufReader::with_capacity(1 << 20, &mut *file);
        let (mut pos, mut line, mut line_start) = (0u64, 1u64, 0u64);
        for w in windows {
            while pos < w.start {
                let chunk = reader.fill_buf()?;
                if chunk.is_empty() {
                    break;
                }
                let part = &chunk[..chunk.len().min((w.start - pos) as usize)];
                line += memchr::memchr_iter(b'\n', part).count() as u64;
                if let Some(nl) = memchr::memrchr(b'\n', part) {
                    line_start = pos + nl as u64 + 1;
                }
                let taken = part.len();
                reader.consume(taken);
                pos += taken as u64;
            }
            let lead = usize::from(w.start > 0);
            let from = w.start - lead as u64;
            let mut bytes = vec![0u8; (w.end - from) as usize];
            let n = read_at_most(reader.get_ref(), &mut bytes, from)?;
            bytes.truncate(n);
            if n > lead {
                batcher.push(ShippedWindow {
                    rule: w.rule,
                    start: w.start,
                    lead,
                    bytes,
                    cut_at_end: w.cut_at_end,
                    line_at_start: line,
                    line_start_offset: line_start,
                });
            }
        }
        Ok(())
    })();
    batcher.flush();
    result
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

/// Fills `buf` with up to `chunk` bytes; `Ok(false)` at the end of the file.
fn read_chunk(file: &mut std::fs::File, buf: &mut Vec<u8>, chunk: usize) -> std::io::Result<bool> {
    buf.resize(chunk, 0);
    let mut filled = 0;
    let outcome = loop {
        if filled == chunk {
            break Ok(true);
        }
        match file.read(&mut buf[filled..]) {
            Ok(0) => break Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    // Whatever was read before an error is scanned; never the zero padding.
    buf.truncate(filled);
    outcome
}

/// One scan worker: its scanner (with its scratch) and its reused read buffer.
struct Worker {
    scanner: Scanner,
    buf: Vec<u8>,
    load: LoadPolicy,
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
        let provenance = Arc::new(Provenance::file(crate::enumerate::display(&job.path)));
        let mut emit = |windows: Vec<ShippedWindow>| {
            let _ = batches.send(CandidateBatch {
                provenance: Arc::clone(&provenance),
                windows,
            });
        };
        let result = match loaded {
            Loaded::Buffered => {
                let len = self.buf.len() as u64;
                if len != listed_len {
                    warn(warning(
                        WarningKind::Changed,
                        &job.path,
                        format!("size changed from {listed_len} to {len} bytes while opening; scanned {len}"),
                    ));
                }
                self.scanner.scan(&self.buf).map(|w| {
                    ship(&self.buf, w, &mut emit);
                    len
                })
            }
            Loaded::Mapped(map) => self.scanner.scan(&map).map(|w| {
                ship(&map, w, &mut emit);
                map.len() as u64
            }),
            Loaded::Streamed(mut file) => {
                let chunk = self.load.chunk;
                let mut read_error = None;
                let scanned = self.scanner.scan_stream(|buf| {
                    read_chunk(&mut file, buf, chunk).or_else(|e| {
                        read_error = Some(e);
                        Ok(false)
                    })
                });
                if let Some(e) = read_error {
                    let total = scanned.as_ref().map_or(0, |(_, total)| *total);
                    warn(warning(
                        WarningKind::Unreadable,
                        &job.path,
                        format!("read failed after {total} bytes ({e}); scanned what was read"),
                    ));
                }
                scanned.map(|(windows, total)| {
                    if !windows.is_empty() {
                        if let Err(e) = ship_from_file(&mut file, windows, &mut emit) {
                            warn(warning(
                                WarningKind::Unreadable,
                                &job.path,
                                format!("reading candidates back failed ({e}); later candidates were lost"),
                            ));
                        }
                    }
                    total
                })
            }
        };
        match result {
            Ok(bytes) => {
                let _ = events.send(Event::Scanned { bytes });
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
    let stop = AtomicBool::new(false);
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
        });
    }

    let mut summary = Summary::default();
    let mut sink_error = None;
    std::thread::scope(|scope| {
        let events = event_tx.clone();
        let stop_ref = &stop;
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
            cap: options.max_findings_per_file_and_rule.unwrap_or(u64::MAX),
            summary: &mut summary,
            per_place: HashMap::new(),
        };
        let mut stopped = false;
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
            match reporter.reduce(event, sink) {
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
    if let Some(e) = sink_error {
        return Err(Error::Sink(e));
    }
    sink.finish(&summary).map_err(Error::Sink)?;
    Ok(summary)
}

/// The reporting end of the pipeline: confidence filter, per-file cap, counters.
struct Reporter<'a> {
    min: Confidence,
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
            Event::Filtered => summary.files_filtered += 1,
            Event::SymlinkSkipped => summary.symlinks_skipped += 1,
        }
        Ok(true)
    }
}
