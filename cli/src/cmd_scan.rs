//! `keysweep scan`: wires arguments to the engine and a sink, prints the summary.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use keysweep::{
    Budget, Confidence, Filters, Finding, LoadPolicy, RunOptions, ScannerOptions, Sink, Summary, Suppressions, Warning,
};

use crate::args::{ConfidenceArg, ScanArgs, SuppressionArgs};
use crate::rules_load::{rule_set, scanner};

/// Forwards findings to the format's sink, prints warnings on standard error, and draws
/// the progress bar on a terminal.
struct Reporter<'a> {
    inner: Box<dyn Sink + 'a>,
    quiet: bool,
    bar: Option<indicatif::ProgressBar>,
}

impl Sink for Reporter<'_> {
    fn begin(&mut self) -> std::io::Result<()> {
        self.inner.begin()
    }
    fn finding(&mut self, finding: &Finding) -> std::io::Result<bool> {
        self.inner.finding(finding)
    }
    fn warning(&mut self, w: &Warning) -> std::io::Result<()> {
        if !self.quiet {
            let line = format!("keysweep: warning: {}: {}", w.path, w.message);
            match &self.bar {
                Some(bar) => bar.suspend(|| eprintln!("{line}")),
                None => eprintln!("{line}"),
            }
        }
        Ok(())
    }
    fn progress(&mut self, s: &Summary) {
        let Some(bar) = &self.bar else {
            return;
        };
        let mut message = format!(
            "{} files, {:.1} MB/s, {} finding(s), {} warning(s)",
            s.files_scanned,
            s.megabytes_per_second(),
            s.findings,
            s.warning_count()
        );
        if s.files_unchanged > 0 || s.blobs_reused > 0 {
            message.push_str(&format!(", {} unchanged, {} reused", s.files_unchanged, s.blobs_reused));
        }
        // Once the counting walk is over, the bar knows its length and shows an ETA.
        if s.listing_done && s.bytes_listed > 0 {
            if bar.length().is_none() {
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{bar:30} {binary_bytes}/{binary_total_bytes} ETA {eta} · {msg}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar.set_length(s.bytes_listed);
            }
            bar.set_position((s.bytes_scanned + s.bytes_unchanged).min(s.bytes_listed));
        } else if s.files_listed > 0 {
            message.push_str(&format!(" · listing: {} files so far", s.files_listed));
        }
        bar.set_message(message);
    }
    fn finish(&mut self, summary: &Summary) -> std::io::Result<()> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.inner.finish(summary)
    }
}

/// Builds a glob set; a bare name like `*.py` matches at any depth, as ripgrep's `-g` does.
fn globs<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<Option<globset::GlobSet>> {
    let mut set = globset::GlobSetBuilder::new();
    let mut any = false;
    for p in patterns {
        let p = p.trim_end_matches('/');
        let pattern = if p.contains('/') {
            p.trim_start_matches("./").to_owned()
        } else {
            format!("**/{p}")
        };
        set.add(globset::Glob::new(&pattern).with_context(|| format!("invalid glob {p:?}"))?);
        any = true;
    }
    Ok(if any { Some(set.build()?) } else { None })
}

/// `--include GLOB` and `--exclude GLOB`; an include starting with `!` excludes (ripgrep's `-g '!x'`).
fn filters(args: &ScanArgs) -> Result<Filters> {
    let (negated, included): (Vec<&String>, Vec<&String>) = args.include.iter().partition(|g| g.starts_with('!'));
    let excluded = args
        .exclude
        .iter()
        .map(String::as_str)
        .chain(negated.iter().map(|g| &g[1..]));
    Ok(Filters {
        include: globs(included.iter().map(|g| g.as_str()))?,
        exclude: globs(excluded)?,
        max_file_size: args.max_file_size,
        shard: args.shard,
    })
}

fn inputs(args: &ScanArgs) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    let mut read_list = |reader: &mut dyn BufRead| -> Result<()> {
        for line in reader.split(b'\n') {
            let line = line?;
            let line = line.strip_suffix(b"\r").unwrap_or(&line);
            if !line.is_empty() {
                use std::os::unix::ffi::OsStrExt;
                paths.push(PathBuf::from(std::ffi::OsStr::from_bytes(line)));
            }
        }
        Ok(())
    };
    if let Some(file) = &args.paths_from {
        let f = std::fs::File::open(file).with_context(|| format!("reading --paths-from {}", file.display()))?;
        read_list(&mut std::io::BufReader::new(f))?;
    }
    let mut explicit = Vec::new();
    for p in &args.paths {
        if p.as_os_str() == "-" {
            read_list(&mut std::io::stdin().lock())?;
        } else {
            explicit.push(p.clone());
        }
    }
    paths.splice(0..0, explicit);
    if paths.is_empty() && args.paths.is_empty() && args.paths_from.is_none() {
        paths.push(PathBuf::from("."));
    }
    Ok(paths)
}

/// The allowlist, baseline and inline-allow choice the options name.
pub fn suppressions(args: &SuppressionArgs) -> Result<Suppressions> {
    let mut suppressions = Suppressions::default();
    suppressions.ignore_inline = args.no_inline_allow;
    for file in &args.allowlist {
        suppressions.add_allowlist(file).context("reading --allowlist")?;
    }
    if let Some(report) = &args.baseline {
        suppressions.add_baseline(report).context("reading --baseline")?;
    }
    Ok(suppressions)
}

/// Runs the scan; returns the exit code.
pub fn run(args: &ScanArgs) -> Result<i32> {
    let paths = inputs(args)?;
    if paths.is_empty() {
        bail!("no paths to scan");
    }
    let rules = rule_set(&args.rules)?;
    let scanning = ScannerOptions {
        min_confidence: match args.confidence {
            ConfidenceArg::Low => Confidence::Low,
            ConfidenceArg::Medium => Confidence::Medium,
            ConfidenceArg::High => Confidence::High,
        },
        archives: (!args.no_archives).then(|| Budget {
            max_depth: args.max_depth,
            max_unpacked_bytes: args.max_unpacked_bytes,
            ..Budget::default()
        }),
        decode_depth: if args.no_decode { 0 } else { args.max_decode_depth },
        max_findings_per_file_and_rule: (args.max_findings_per_file > 0).then_some(args.max_findings_per_file),
        suppressions: Arc::new(suppressions(&args.suppression)?),
        report_every_rule: false,
    };
    let scanner = scanner(rules, scanning, args.no_cache)?;
    // Ctrl-C stops starting new files and reports what was found; a second one exits now.
    let cancel = Arc::new(AtomicBool::new(false));
    let on_signal = Arc::clone(&cancel);
    ctrlc::set_handler(move || {
        if on_signal.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    })
    .context("installing the Ctrl-C handler")?;
    let options = RunOptions {
        threads: args.threads,
        filters: filters(args)?,
        load: LoadPolicy {
            mmap: !args.no_mmap,
            ..LoadPolicy::default()
        },
        cancel: Arc::clone(&cancel),
        count_ahead: false,
        datastore: args
            .datastore
            .as_deref()
            .map(keysweep::Datastore::open)
            .transpose()
            .context("opening --datastore")?,
    };
    let inner = crate::output::sink(
        args.format,
        args.output.as_deref(),
        args.redact,
        args.color,
        scanner.rules(),
    )?;
    // A progress bar only where a person watches: a terminal on stderr, not `--quiet`.
    let show_bar = !args.quiet && std::io::stderr().is_terminal();
    let options = RunOptions {
        count_ahead: show_bar,
        ..options
    };
    let bar = show_bar.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    });
    let mut reporter = Reporter {
        inner,
        quiet: args.quiet,
        bar,
    };
    let summary = match scanner.scan_paths(&paths, &options, &mut reporter) {
        Ok(summary) => summary,
        // A reader that closed the pipe (`| head`) has seen at least one finding.
        Err(keysweep::Error::Sink(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            return Ok(if args.exit_zero { 0 } else { 1 });
        }
        Err(e) => return Err(e.into()),
    };
    if !args.quiet {
        eprint!("{}", summary_text(&summary));
    }
    if summary.interrupted && cancel.load(Ordering::SeqCst) {
        eprintln!("keysweep: interrupted: the findings above are those of the files scanned so far");
        return Ok(130);
    }
    if summary.files_scanned == 0 && summary.warning_count() > 0 {
        eprintln!("keysweep: error: nothing could be scanned");
        return Ok(2);
    }
    Ok(if summary.findings > 0 && !args.exit_zero { 1 } else { 0 })
}

fn summary_text(s: &Summary) -> String {
    let mut text = format!(
        "keysweep: {} files, {:.1} MB in {:.2} s ({:.1} MB/s); {} finding(s)",
        s.files_scanned,
        s.bytes_scanned as f64 / 1e6,
        s.elapsed.as_secs_f64(),
        s.megabytes_per_second(),
        s.findings
    );
    if s.findings_below_threshold > 0 {
        text.push_str(&format!(", {} below --confidence", s.findings_below_threshold));
    }
    if s.findings_over_cap > 0 {
        text.push_str(&format!(", {} over the per-file cap", s.findings_over_cap));
    }
    for (reason, n) in &s.findings_suppressed {
        text.push_str(&format!(", {n} suppressed ({reason})"));
    }
    text.push_str(&format!("; {} warning(s)\n", s.warning_count()));
    for (rule, n) in &s.findings_per_rule {
        text.push_str(&format!("  {n:>6}  {rule}\n"));
    }
    for (kind, n) in &s.warnings {
        text.push_str(&format!("  {n:>6}  warning: {kind}\n"));
    }
    if s.archives_opened > 0 || s.budget_hits > 0 || s.corrupt_inputs > 0 {
        text.push_str(&format!(
            "  archives: {} opened, {} members scanned, {:.1} MB unpacked, {} budget hits, {} corrupt\n",
            s.archives_opened,
            s.members_scanned,
            s.bytes_unpacked as f64 / 1e6,
            s.budget_hits,
            s.corrupt_inputs
        ));
    }
    if s.files_filtered > 0 || s.symlinks_skipped > 0 {
        text.push_str(&format!(
            "  skipped: {} filtered, {} symbolic links not followed\n",
            s.files_filtered, s.symlinks_skipped
        ));
    }
    if s.files_unchanged > 0 || s.blobs_scanned > 0 || s.blobs_reused > 0 || s.blobs_delta_scanned > 0 {
        text.push_str(&format!(
            "  datastore: {} files unchanged ({:.1} MB not read), {} blobs scanned, {} reused ({:.1} MB not scanned again)",
            s.files_unchanged,
            s.bytes_unchanged as f64 / 1e6,
            s.blobs_scanned,
            s.blobs_reused,
            s.bytes_reused as f64 / 1e6
        ));
        if s.blobs_scanned_twice > 0 {
            text.push_str(&format!(
                ", {} scanned twice (in flight or cut short elsewhere)",
                s.blobs_scanned_twice
            ));
        }
        if s.blobs_delta_scanned > 0 {
            text.push_str(&format!(", {} scanned with only the new rules", s.blobs_delta_scanned));
        }
        text.push('\n');
    }
    if s.files_other_shard > 0 {
        text.push_str(&format!("  {} files left to other shards\n", s.files_other_shard));
    }
    text
}
