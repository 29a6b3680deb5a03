//! The `keysweep` command: arguments and wiring only.

mod args;
mod cmd_rules;
mod cmd_scan;
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
            RulesCommand::List { rules, json } => cmd_rules::list(rules, *json),
            RulesCommand::Check { rules } => cmd_rules::check(rules),
        },
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("keysweep: error: {e:#}");
            2
        }
    };
    std::process::exit(code);
}
