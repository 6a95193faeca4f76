// Package executors defines how the engine runs one attempt of one task:
// the Executor interface, its Request and Result. Implementations live in
// subpackages, one per kind of task and external dependency (shell, ssh,
// http), and are wired to task types by the cli.
//
// An executor must never write to the journal, never retry on its own (the
// engine owns retries and backoff, so that every attempt is journaled), and
// never hold on to a process or connection after Execute returns, except a
// pool it owns and closes in Close.
package executors
