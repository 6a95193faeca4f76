// Package executors defines how the engine runs one attempt of one task:
// the Executor interface, its Request and Result, and what an executor sees
// of a task: Task with the config of its type (ShellConfig, SSHConfig,
// HTTPConfig), the ${secret:NAME} and ${env:VAR} references in its strings
// (ScanRefs), environment variable names (ValidEnvName) and the JSON path of
// http outputs (ParseOutputPath). The workflow loader (engine/workflow)
// decodes and validates these types; the executors own them, so that no
// executor imports the loader. This package imports nothing of PicoFlow's.
// Implementations live in subpackages, one per kind of task and external
// dependency (shell, ssh, http), and are wired to task types by the cli.
//
// An executor must never write to the journal, never retry on its own (the
// engine owns retries and backoff, so that every attempt is journaled), and
// never hold on to a process or connection after Execute returns, except a
// pool it owns and closes in Close.
package executors
