//! Threads and bounded channels: enumerate → load + scan workers (each with its own
//! Hyperscan scratch) → validators → the caller's sink. Bounded channels give backpressure,
//! so memory is a budget, not luck.

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
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            threads: 0,
            filters: Filters::default(),
            load: LoadPolicy::default(),
            min_confidence: Confidence::Medium,
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

/// Copies each window out of `data` (plus one byte of leading context) and numbers its lines.
pub(crate) fn ship(data: &[u8], mut windows: Vec<Window>) -> Vec<ShippedWindow> {
    windows.sort_unstable_by_key(|w| (w.start, w.rule));
    let mut line = 1u64;
    let mut line_start = 0u64;
    let mut counted_to = 0usize;
    windows
        .into_iter()
        .map(|w| {
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
            ShippedWindow {
                rule: w.rule,
                start: start as u64,
                lead,
                bytes: data[start - lead..end].to_vec(),
                line_at_start: line,
                line_start_offset: line_start,
            }
        })
        .collect()
}

/// Re-reads a streamed file once, sequentially, to number lines, and copies out its windows.
fn ship_from_file(file: &mut std::fs::File, mut windows: Vec<Window>) -> std::io::Result<Vec<ShippedWindow>> {
    windows.sort_unstable_by_key(|w| (w.start, w.rule));
    file.rewind()?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let (mut pos, mut line, mut line_start) = (0u64, 1u64, 0u64);
    let mut out = Vec::with_capacity(windows.len());
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
            out.push(ShippedWindow {
                rule: w.rule,
                start: w.start,
                lead,
                bytes,
                line_at_start: line,
                line_start_offset: line_start,
            });
        }
    }
    Ok(out)
}

fn read_at_most(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
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
                self.scanner
                    .scan(&self.buf)
                    .map(|w| (ship(&self.buf, w), len))
                    .map_err(Error::from)
            }
            Loaded::Mapped(map) => self
                .scanner
                .scan(&map)
                .map(|w| (ship(&map, w), map.len() as u64))
                .map_err(Error::from),
            Loaded::Streamed(mut file) => self.scan_streamed(job, &mut file, events),
        };
        match result {
            Ok((windows, bytes)) => {
                let _ = events.send(Event::Scanned { bytes });
                if !windows.is_empty() {
                    let provenance = Arc::new(Provenance::file(crate::enumerate::display(&job.path)));
                    let _ = batches.send(CandidateBatch { provenance, windows });
                }
            }
            Err(e) => warn(warning(WarningKind::Unreadable, &job.path, e.to_string())),
        }
    }

    fn scan_streamed(
        &mut self,
        job: &FileJob,
        file: &mut std::fs::File,
        events: &Sender<Event>,
    ) -> Result<(Vec<ShippedWindow>, u64), Error> {
        let chunk = self.load.chunk;
        let (windows, total, io_error) = self.scanner.scan_stream(|buf| {
            buf.resize(chunk, 0);
            let mut filled = 0;
            while filled < chunk {
                match file.read(&mut buf[filled..])? {
                    0 => break,
                    n => filled += n,
                }
            }
            buf.truncate(filled);
            Ok(filled == chunk)
        })?;
        if let Some(e) = io_error {
            let _ = events.send(Event::Warning(warning(
                WarningKind::Unreadable,
                &job.path,
                format!("read failed after {total} bytes ({e}); scanned what was read"),
            )));
        }
        let shipped = if windows.is_empty() {
            Vec::new()
        } else {
            ship_from_file(file, windows).map_err(Error::Read)?
        };
        Ok((shipped, total))
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
    let (batch_tx, batch_rx) = bounded::<CandidateBatch>(256);
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
        drop(event_tx);
        drop(job_rx);

        if let Err(e) = sink.begin() {
            sink_error = Some(e);
            stop.store(true, Ordering::Relaxed);
        }
        for event in &event_rx {
            if sink_error.is_some() {
                continue; // drain so producers finish
            }
            let outcome = reduce(event, options.min_confidence, &mut summary, sink);
            match outcome {
                Ok(true) => {}
                Ok(false) => stop.store(true, Ordering::Relaxed),
                Err(e) => {
                    sink_error = Some(e);
                    stop.store(true, Ordering::Relaxed);
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

fn reduce(event: Event, min: Confidence, summary: &mut Summary, sink: &mut dyn Sink) -> std::io::Result<bool> {
    match event {
        Event::Findings(findings) => {
            for f in &findings {
                if f.confidence < min {
                    summary.findings_below_threshold += 1;
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
