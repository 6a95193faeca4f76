// Package cli is the picoflow command line: one file per subcommand, each
// registering itself in init; the global flags; the exit-code table
// (exit.go), which is the only place exit codes are defined; and the
// wiring of journal, engine, executors, projector and daemon for a
// command. It owns presentation (progress lines, tables, JSON output) and
// process concerns (signals, locks, the home directory layout).
//
// Nothing imports cli. It must never hold logic that belongs to the engine
// (what runs when, what a run's state is) or to the journal (how events are
// stored); when a command needs such a rule, the rule goes below and the
// command calls it.
package cli
