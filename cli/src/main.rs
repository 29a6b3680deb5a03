//! The `keysweep` command: arguments and wiring only.

mod args;
mod cmd_merge;
mod cmd_report;
mod cmd_rules;
mod cmd_scan;
mod output;
mod rules_load;

use clap::Parser;

use args::{Cli, Command, RulesCommand};

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEYSWEEP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Scan(args) => cmd_scan::run(args),
        Command::Rules { command } => match command {
            RulesCommand::List { rules, json, markdown } => cmd_rules::list(rules, *json, *markdown),
            RulesCommand::Check { rules } => cmd_rules::check(rules),
        },
        Command::Report(args) => cmd_report::run(args),
        Command::Merge { reports, output } => cmd_merge::run(reports, output.as_deref()),
    };
    let code = match result {
        Ok(code) => code,
        // A closed pipe (`keysweep scan | head`) is how readers say they have enough.
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            eprintln!("keysweep: error: {e:#}");
            2
        }
    };
    std::process::exit(code);
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        let io = cause
            .downcast_ref::<std::io::Error>()
            .or_else(|| match cause.downcast_ref::<keysweep::Error>() {
                Some(keysweep::Error::Sink(io)) => Some(io),
                _ => None,
            });
        io.is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
