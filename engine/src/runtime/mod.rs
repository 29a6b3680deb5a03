//! The threaded run: threads and bounded channels only. walk → workers (each owning its
//! Hyperscan scratch: load → expand → match → ship) → validators (confirm) → the reporting
//! end on the calling thread → the caller's sink; with a datastore, one writer thread.
//! Bounded channels give backpressure, so memory is a budget, not luck.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam::channel::{bounded, Receiver, Sender};

use crate::core::{Sink, Summary};
use crate::datastore::writer::{Claims, Record};
use crate::datastore::{Datastore, Lookup, Profile, RunCounters};
use crate::dedup::{Ledger, Tracker};
use crate::error::Error;
use crate::policy::{ReportFilter, ScannerOptions};
use crate::stages::confirm::Validator;
use crate::stages::load::LoadPolicy;
use crate::stages::matcher::{Compiled, Database, Scanner};
use crate::stages::report::Reporter;
use crate::stages::walk::{walk, Enumerated, FileJob, Filters};
use crate::stages::worker::{Batch, DeltaScanner, Event, Outlet, Worker};

/// How a scan of paths runs: threads, which files, how they are read, and where it is
/// recorded. What is found is the scanner's ([`ScannerOptions`]).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Scan worker threads (0: one per core).
    pub threads: usize,
    /// Include/exclude globs, size limit and shard.
    pub filters: Filters,
    /// How files are read.
    pub load: LoadPolicy,
    /// Set (from a signal handler, say) to stop: no new file is started, and what was found
    /// is still reported.
    pub cancel: Arc<AtomicBool>,
    /// Walk the inputs a second time, ahead of the scan, only to count files and bytes: the
    /// totals a progress bar needs for its ETA (the scan's own walk waits on the workers).
    pub count_ahead: bool,
    /// Record the scan here, skip inputs unchanged since an earlier run, and scan each
    /// distinct blob once (see [`crate::Datastore`]).
    pub datastore: Option<Datastore>,
}

/// The workers' outlet in a threaded run: bounded channels to the validators and the
/// reporting end.
struct Channels {
    events: Sender<Event>,
    batches: Sender<Batch>,
}

impl Outlet for Channels {
    fn batch(&self, batch: crate::stages::confirm::CandidateBatch, chain: Option<crate::dedup::Chain>) {
        let _ = self.batches.send((batch, chain));
    }
    fn event(&self, event: Event) {
        let _ = self.events.send(event);
    }
}

/// Runs a whole scan of `inputs` into `sink`.
pub(crate) fn run(
    compiled: &Compiled,
    scanning: &ScannerOptions,
    inputs: &[PathBuf],
    options: &RunOptions,
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
    let (batch_tx, batch_rx) = bounded::<Batch>(32);
    let (event_tx, event_rx) = bounded::<Event>(4096);

    // With a datastore: this scan's profile and run, the claims its workers share, the
    // writer's channel.
    let claims = Arc::new(Claims::default());
    let (record_tx, record_rx) = bounded::<Record>(4096);
    let store = match &options.datastore {
        Some(store) => {
            let profile = Profile::new(&compiled.rules, scanning);
            let profile_id = store.profile_id(&profile)?;
            let plan = store.delta_plan(&profile, profile_id)?.map(Arc::new);
            let run_id = store.start_run(profile_id)?;
            Some((store, profile_id, run_id, plan))
        }
        None => None,
    };
    // The rules added since the previous profile get a database of their own.
    let delta_db = match store.as_ref().and_then(|s| s.3.as_ref()) {
        Some(plan) if !plan.added.is_empty() => {
            let added = plan
                .added
                .iter()
                .filter_map(|&i| compiled.rules.rules().get(i).cloned())
                .collect();
            let rules = crate::rules::RuleSet::from_rules(added)?;
            let index: Vec<u32> = plan.added.iter().map(|&i| i as u32).collect();
            Some((Arc::new(Database::build(&rules, None)?), Arc::new(index)))
        }
        _ => None,
    };

    // Scratch is allocated up front so a failure is an error, not a silent thread exit.
    let mut workers = Vec::with_capacity(threads);
    for _ in 0..threads {
        let tracker = match &store {
            Some((store, profile, _, plan)) => Some(Tracker::new(
                Lookup::new(store, *profile, plan.clone())?,
                Arc::clone(&claims),
                delta_db.is_some(),
                scanning.archives.map_or(0, |b| b.max_depth),
            )),
            None => None,
        };
        let delta = match &delta_db {
            Some((db, index)) => Some(DeltaScanner {
                scanner: Scanner::new(Arc::clone(db))?,
                rule_index: Arc::clone(index),
            }),
            None => None,
        };
        let mut worker = Worker::new(&compiled.db, scanning, options.load)?;
        worker.delta = delta;
        worker.tracker = tracker;
        workers.push(worker);
    }
    let mut ledger = match &store {
        Some((store, profile, _, plan)) => Some((Lookup::new(store, *profile, plan.clone())?, plan)),
        None => None,
    }
    .map(|(lookup, plan)| {
        let rule_order = plan.as_ref().map(|_| {
            compiled
                .rules
                .rules()
                .iter()
                .enumerate()
                .map(|(i, r)| (r.id().to_owned(), i))
                .collect()
        });
        Ledger::new(
            Arc::clone(&claims),
            record_tx.clone(),
            scanning.max_findings_per_file_and_rule.unwrap_or(u64::MAX),
            rule_order,
            lookup,
        )
    });

    let mut summary = Summary::default();
    let mut sink_error = None;
    let mut store_error = None;
    let listed = Listed::default();
    std::thread::scope(|scope| {
        if options.count_ahead {
            let listed = &listed;
            scope.spawn(move || {
                for input in inputs {
                    walk(input, &options.filters, &mut |item| {
                        if let Enumerated::File(job) = item {
                            listed.files.fetch_add(1, Ordering::Relaxed);
                            listed.bytes.fetch_add(job.size, Ordering::Relaxed);
                        }
                        !stop.load(Ordering::Relaxed)
                    });
                }
                listed.done.store(true, Ordering::Relaxed);
            });
        }
        let writer = store.as_ref().map(|&(store, profile, run, _)| {
            let records = record_rx.clone();
            let claims = &*claims;
            scope.spawn(move || crate::datastore::writer::run(store, profile, run, records, claims))
        });
        drop(record_rx);
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
            let out = Channels {
                events: event_tx.clone(),
                batches: batch_tx.clone(),
            };
            scope.spawn(move || {
                for job in jobs {
                    if stop_ref.load(Ordering::Relaxed) {
                        break;
                    }
                    worker.scan_job(&job, &out);
                }
            });
        }
        drop(batch_tx);
        for _ in 0..validators {
            let batches = batch_rx.clone();
            let events = event_tx.clone();
            let mut validator = Validator::new(Arc::clone(&compiled.rules));
            validator.set_dedup_across_rules(!scanning.report_every_rule);
            scope.spawn(move || {
                for (batch, chain) in batches {
                    let findings = validator.confirm(&batch);
                    // A batch inside tracked blobs reports even when empty: they wait for it.
                    if (!findings.is_empty() || chain.is_some())
                        && events.send(Event::Findings(findings, chain)).is_err()
                    {
                        break;
                    }
                }
            });
        }
        drop(batch_rx);
        drop(event_tx);
        drop(job_rx);

        let mut reporter = Reporter {
            filter: ReportFilter::new(
                scanning.min_confidence,
                Arc::clone(&scanning.suppressions),
                scanning.max_findings_per_file_and_rule,
            ),
            summary: &mut summary,
            ledger: ledger.as_mut(),
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
                if options.count_ahead {
                    let s = &mut *reporter.summary;
                    s.files_listed = listed.files.load(Ordering::Relaxed);
                    s.bytes_listed = listed.bytes.load(Ordering::Relaxed);
                    s.listing_done = listed.done.load(Ordering::Relaxed);
                }
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
        if !stopped {
            if let Err(e) = reporter.finish_ledger(sink, stop.load(Ordering::Relaxed)) {
                sink_error = Some(e);
            }
        }
        let interrupted = stop.load(Ordering::Relaxed);
        if let Some(ledger) = &reporter.ledger {
            let s = &*reporter.summary;
            let counters = RunCounters {
                files_scanned: s.files_scanned,
                files_unchanged: s.files_unchanged,
                blobs_scanned: ledger.counters.blobs_scanned,
                blobs_delta_scanned: ledger.counters.blobs_delta_scanned,
                blobs_scanned_twice: s.blobs_scanned_twice,
                blobs_reused: ledger.counters.blobs_reused,
                bytes_reused: ledger.counters.bytes_reused,
                bytes_scanned: s.bytes_scanned,
                findings: s.findings,
            };
            let _ = record_tx.send(Record::Finish { counters, interrupted });
        }
        drop(reporter);
        drop(ledger);
        drop(record_tx);
        if let Some(writer) = writer {
            match writer.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => store_error = Some(e),
                Err(_) => store_error = store.as_ref().map(|s| s.0.writer_stopped()),
            }
        }
    });
    summary.elapsed = started.elapsed();
    summary.interrupted = stop.load(Ordering::Relaxed) && sink_error.is_none();
    if let Some(e) = sink_error {
        return Err(Error::Sink(e));
    }
    // The report is whole even when the datastore failed: what was found is not lost.
    sink.finish(&summary).map_err(Error::Sink)?;
    if let Some(e) = store_error {
        return Err(e.into());
    }
    Ok(summary)
}

/// What the counting walk has listed so far.
#[derive(Default)]
struct Listed {
    files: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
    done: AtomicBool,
}

/// How often the sink hears the counters while a scan runs.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
