//! Building the rule set and the engine from the command line's rule options.

use anyhow::{Context, Result};
use keysweep::{Engine, EngineOptions, RuleSet};

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

/// An engine over `rules`, with the database cache unless `no_cache`.
pub fn engine(rules: RuleSet, no_cache: bool) -> Result<Engine> {
    let options = if no_cache {
        EngineOptions::default()
    } else {
        EngineOptions::with_default_cache()
    };
    Engine::new(rules, &options).context("compiling the rules")
}
