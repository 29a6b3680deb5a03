//! Building the rule set and the engine from the command line's rule options.

use anyhow::{Context, Result};
use keysweep::{RuleSet, Scanner, ScannerOptions};

use crate::args::RulesArgs;

/// The rule set the options ask for.
pub fn rule_set(args: &RulesArgs) -> Result<RuleSet> {
    if args.no_builtin_rules {
        anyhow::ensure!(
            !args.rules.is_empty(),
            "--no-builtin-rules needs at least one --rules DIR"
        );
        let mut rules = Vec::new();
        for path in &args.rules {
            rules.extend(RuleSet::from_path(path)?.rules().iter().cloned());
        }
        return Ok(RuleSet::from_rules(rules)?);
    }
    Ok(RuleSet::builtin_with(&args.rules)?)
}

/// A scanner of `rules` with `options`, with the database cache unless `no_cache`.
pub fn scanner(rules: RuleSet, options: ScannerOptions, no_cache: bool) -> Result<Scanner> {
    let cache = if no_cache { None } else { keysweep::default_cache_dir() };
    Scanner::with_cache(rules, options, cache.as_deref()).context("compiling the rules")
}
