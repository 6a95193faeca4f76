// Package workflow owns the definition of a PicoFlow workflow: the YAML
// schema, its loader and its validator.
//
// Load, Parse and LoadPaths turn workflow files into immutable *Workflow
// values with every default resolved (retry, timeout, backoff, shutdown
// grace, idempotent) and the dependency graph indexed (Workflow.Deps,
// Workflow.Downstream, Workflow.TopoOrder). The defaults are the built-in ones
// (BuiltinConfig); ParseWith, LoadWith and LoadPathsWith take another base
// instead, so that the cli can apply the global config's defaults: a task's
// own key wins over the workflow's config, which wins over the base.
//
// The loader walks yaml.Node trees (with the validation layer it shares
// with the global config, engine/yamlcheck) rather than decoding into structs, so
// that every problem carries the line, column and YAML path it is about,
// and it never stops at the first problem: a file is reported whole, as a
// Problems value sorted by line, each formatted as
//
//	FILE:LINE:COL: PATH: MSG (did you mean "x"?) (hint: HINT)
//
// Unknown keys at any level are errors, with the closest known key as a
// suggestion; wrong YAML kinds, bad durations, cron schedules and time
// zones, unknown or self dependencies and dependency cycles
// ("dependency cycle: a -> b -> a", each arrow read as "depends on") are
// reported the same way.
//
// ${secret:NAME} and ${env:VAR} references in config strings, headers and
// env values are checked for syntax and left in place; they are resolved at
// run time. Task.SecretRefs lists the secrets a task needs.
//
// Raw keeps the exact bytes parsed and Hash their SHA-256, so the journal
// can record the definition a run used.
//
// The package must never execute anything, and does no I/O beyond reading
// the files and directories it is given (plus the system time zone
// database, through time.LoadLocation, to validate zones). It imports
// engine/yamlcheck (problems, node helpers), engine/schedule (the one cron
// parser, the policy types) and executors (the task config types it
// decodes); the engine and the cli import it, the executors never do.
//
// Example returns the commented example workflow that `picoflow init`
// writes; a test keeps it loading cleanly and running on a plain /bin/sh.
package workflow
