// Package projector materialises the journal into a SQLite database
// (HOME/picoflow.db) that answers the questions the journal is slow at:
// run history, live status, where a task's log is, what retention may drop.
//
// # A derived view
//
// The journal is the only durable truth; the database is a cache that can
// always be rebuilt from it (Rebuild, `picoflow reindex`). So SQLite runs in
// WAL mode with synchronous=NORMAL: a power cut may lose the newest
// projection commits, never the journal's events, and the next CatchUp
// applies them again. A home has one journal per workflow; the database
// remembers, per journal, the identity (sequence, type and time) of the last
// entry it applied. If a journal no longer holds that entry — its tail was
// lost before an fsync and rewritten, or it was truncated past the
// projection — or a journal it applied is gone (an earlier release's single
// journal, converted), CatchUpAll rebuilds from scratch instead of mixing
// two histories. The one exception is retention: DeleteRuns commits
// with synchronous=FULL, because gc cuts the journal right after it and a
// lost deletion would leave rows the journal no longer explains.
//
// # One writer, in journal order
//
// Rows change only by applying events in sequence order (CatchUp, Rebuild)
// and by retention (DeleteRuns, MarkLogsRemoved). Each batch of events is
// applied in one BEGIN IMMEDIATE transaction that also stores the last
// applied sequence number, so a crash between batches loses nothing and a
// batch is never applied twice. Inside the transaction the stored sequence
// is read again: when another writer (a daemon, a second CLI process, a
// second handle) got there first, events it applied are skipped. Writers in
// one process share a single connection; writers in different processes
// queue on SQLite's write lock with a busy timeout, so concurrent catch-ups
// never fail with "database is locked". Readers use their own connections
// and never block the writer (WAL).
//
// Scans leave run definitions out (journal.ScanOptions.NoDefinition): a
// run_started whose definition the database lacks has it read from its
// entry again and stored in the same transaction (definition.go), so a
// 7 MB definition is decoded once per workflow version, not per run.
//
// # Schema
//
// Migrations are numbered by PRAGMA user_version and applied in order
// inside one transaction when the database is opened (see schema.go). A
// database from a newer PicoFlow is refused with a hint to reindex.
//
// The projector reads the journal with journal.Scan only (read-only, no
// lock: it works while another process owns the journal). It must never
// import the engine or anything that executes tasks, never write to the
// journal, and never be the only place a fact is recorded.
package projector
