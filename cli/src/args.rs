//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// keysweep finds leaked credentials in files and directories, fast.
///
/// It compiles every rule into one Hyperscan database, scans files with one thread per core,
/// and confirms each candidate with the rule's full pattern, entropy floor and checksums.
#[derive(Parser, Debug)]
#[command(name = "keysweep", version, about, long_about, max_term_width = 100, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "\
Examples:
  keysweep scan .                              scan the current directory
  keysweep scan -f jsonl -o out.jsonl src/     machine-readable findings
  keysweep scan -f sarif --redact . > k.sarif  for code scanning, secrets hashed
  find /srv -name '*.cfg' | keysweep scan -    scan a list of paths
  keysweep scan --datastore m.db /mirror       resumable, incremental, each blob once
  keysweep report m.db --package NAME          what the datastore holds for one project
  keysweep rules list                          the rules, their ids and confidence
  keysweep rules check --rules my-rules/       verify your own rules

Environment:
  KEYSWEEP_CACHE_DIR   where compiled rule databases are cached (default ~/.cache/keysweep)
  KEYSWEEP_LOG         log filter (e.g. debug)
  NO_COLOR             disables colour";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Scan files and directories for secrets.
    ///
    /// Exit status: 0 when nothing was found, 1 when findings were reported, 2 on error
    /// (bad arguments, unusable rules, or nothing could be scanned).
    Scan(Box<ScanArgs>),
    /// List or check the rules.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Print the findings recorded in a datastore, without scanning.
    Report(Box<ReportArgs>),
    /// Merge the shards of one scan: JSON Lines reports into one report (each finding once),
    /// or datastores into one datastore (`-o` names it; it may exist).
    Merge {
        /// Reports written by `scan -f jsonl` (or `-f json`), or datastores.
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        /// Write the merged report (or datastore) here; reports go to standard output without it.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct SuppressionArgs {
    /// Do not report what this allowlist names (TOML: fingerprints, regexes on the secret,
    /// path globs); may be repeated.
    #[arg(long, value_name = "FILE", help_heading = "Suppression")]
    pub allowlist: Vec<PathBuf>,
    /// Do not report findings already in this report (JSON or JSON Lines from `scan`).
    #[arg(long, value_name = "REPORT", help_heading = "Suppression")]
    pub baseline: Option<PathBuf>,
    /// Report secrets on lines marked `keysweep:allow` too (for scans of others' code).
    #[arg(long, help_heading = "Suppression")]
    pub no_inline_allow: bool,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The datastore written by `scan --datastore`.
    #[arg(value_name = "DATASTORE")]
    pub datastore: PathBuf,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "pretty")]
    pub format: Format,
    /// Write to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only findings of this rule id (repeatable).
    #[arg(long = "rule", value_name = "RULE")]
    pub rule: Vec<String>,
    /// Only findings in releases of this project (wheels, sdists, eggs by file name).
    #[arg(long, value_name = "NAME")]
    pub package: Option<String>,
    /// Report findings at this confidence or above.
    #[arg(long, value_enum, default_value = "medium")]
    pub confidence: ConfidenceArg,
    /// Replace secrets by their hash and mask them in snippets.
    #[arg(long)]
    pub redact: bool,
    #[command(flatten)]
    pub suppression: SuppressionArgs,
    /// Print the datastore's totals and runs (JSON) instead of findings.
    #[arg(long)]
    pub stats: bool,
    /// Colour.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,
    #[command(flatten)]
    pub rules: RulesArgs,
}

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// List the rules: id, confidence, name.
    List {
        #[command(flatten)]
        rules: RulesArgs,
        /// Print JSON Lines instead of a table.
        #[arg(long, conflicts_with = "markdown")]
        json: bool,
        /// Print the Markdown table of the README.
        #[arg(long)]
        markdown: bool,
    },
    /// Verify every rule: compiles in Hyperscan and in the regex engine, every example is
    /// found and no negative example is, through the real scanning path.
    Check {
        #[command(flatten)]
        rules: RulesArgs,
    },
}

#[derive(Args, Debug, Clone)]
pub struct RulesArgs {
    /// Load rules from DIR (or a .toml file) too; a rule whose id exists replaces it.
    #[arg(long = "rules", value_name = "DIR", help_heading = "Rules")]
    pub rules: Vec<PathBuf>,
    /// Use only the rules given with --rules.
    #[arg(long, help_heading = "Rules")]
    pub no_builtin_rules: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Human-readable text.
    Pretty,
    /// One JSON array.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// SARIF 2.1.0 (GitHub code scanning).
    Sarif,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorChoice {
    /// Colour when writing to a terminal.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfidenceArg {
    Low,
    Medium,
    High,
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Files or directories to scan; `-` reads a list of paths from standard input.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Read more paths to scan from FILE, one per line.
    #[arg(long, value_name = "FILE", help_heading = "Input")]
    pub paths_from: Option<PathBuf>,
    /// Only scan files matching GLOB (repeatable); `!GLOB` excludes. Globs match the path
    /// below each directory given, and a bare name (`*.py`) matches at any depth.
    #[arg(long = "include", short = 'g', value_name = "GLOB", help_heading = "Input")]
    pub include: Vec<String>,
    /// Skip files and directories matching GLOB (repeatable).
    #[arg(long = "exclude", value_name = "GLOB", help_heading = "Input")]
    pub exclude: Vec<String>,
    /// Skip files larger than SIZE (bytes, or with K, M, G suffix).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, help_heading = "Input")]
    pub max_file_size: Option<u64>,
    /// Never memory-map files (safer when files are truncated while being scanned).
    #[arg(long, help_heading = "Input")]
    pub no_mmap: bool,

    /// Do not open archives or compressed files: scan their bytes as they are.
    #[arg(long, help_heading = "Archives")]
    pub no_archives: bool,
    /// Open archives nested up to N deep (a wheel in an sdist is depth 2).
    #[arg(long, value_name = "N", default_value_t = keysweep::Budget::default().max_depth, help_heading = "Archives")]
    pub max_depth: u32,
    /// Stop unpacking a file after SIZE decompressed bytes (K, M, G suffixes).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "8G", help_heading = "Archives")]
    pub max_unpacked_bytes: u64,

    /// Follow decoders (`.pyc`, UTF-16, base64, hex, escapes, percent-encoding) up to N
    /// deep: base64 of an escaped string is 2.
    #[arg(long, value_name = "N", default_value_t = keysweep::DEFAULT_DECODE_DEPTH, help_heading = "Decoding")]
    pub max_decode_depth: u32,
    /// Scan bytes only as they are: no decoded views (same as --max-decode-depth 0).
    #[arg(long, help_heading = "Decoding")]
    pub no_decode: bool,

    #[command(flatten)]
    pub rules: RulesArgs,
    /// Scan only shard K of N: files are split by a hash of their path below the input, so
    /// N machines running 1/N … N/N over the same tree scan each file once.
    #[arg(long, value_name = "K/N", value_parser = keysweep::Shard::parse, help_heading = "Input")]
    pub shard: Option<keysweep::Shard>,
    /// Report findings at this confidence or above.
    #[arg(long, value_enum, default_value = "medium", help_heading = "Rules")]
    pub confidence: ConfidenceArg,

    /// Record the scan in this SQLite datastore (created if missing). A rerun skips inputs
    /// unchanged since (size and mtime), resumes a killed run, and scans each distinct file
    /// or archive member once; `keysweep report` prints what it holds.
    #[arg(long, value_name = "PATH", help_heading = "Datastore")]
    pub datastore: Option<PathBuf>,

    #[command(flatten)]
    pub suppression: SuppressionArgs,

    /// Report at most N findings of one rule per file; the rest are counted (0: no limit).
    #[arg(long, value_name = "N", default_value_t = keysweep::DEFAULT_MAX_FINDINGS_PER_FILE, help_heading = "Output")]
    pub max_findings_per_file: u64,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "pretty", help_heading = "Output")]
    pub format: Format,
    /// Write findings to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE", help_heading = "Output")]
    pub output: Option<PathBuf>,
    /// Replace secrets by a hash in every output.
    #[arg(long, help_heading = "Output")]
    pub redact: bool,
    /// When to use colours in pretty output.
    #[arg(long, value_enum, default_value = "auto", help_heading = "Output")]
    pub color: ColorChoice,
    /// Print no summary and no warnings on standard error.
    #[arg(long, short = 'q', help_heading = "Output")]
    pub quiet: bool,
    /// Exit 0 even when findings are reported.
    #[arg(long, help_heading = "Output")]
    pub exit_zero: bool,

    /// Scan threads (default: one per core).
    #[arg(
        long,
        short = 'j',
        value_name = "N",
        default_value_t = 0,
        help_heading = "Performance"
    )]
    pub threads: usize,
    /// Do not read or write the compiled-database cache.
    #[arg(long, help_heading = "Performance")]
    pub no_cache: bool,
}

/// Parses `123`, `10K`, `5M`, `2G` (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mult = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(format!("unknown size suffix in {s:?} (use K, M or G)")),
            };
            (&s[..i], mult)
        }
        _ => (s, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("invalid size {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("10"), Ok(10));
        assert_eq!(parse_size("2K"), Ok(2048));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert!(parse_size("3X").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn arguments_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
