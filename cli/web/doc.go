// Package web is PicoFlow's read-only web UI: server-rendered pages of the
// workflows, the run history, one run (its DAG and Gantt chart, folded to
// any journal entry: the time travel of `picoflow replay --until`) and a
// task's log, and /api/runs and /api/runs/RUN_ID, which are byte for byte
// what `picoflow history --json` and `picoflow replay --json` print.
//
// It owns the HTTP routes, the templates and assets (embedded), the
// security headers and the token check. It reads everything through a
// Source that package cli implements with the same functions the commands
// use, so it never opens the journal, the database or a path of the home
// itself, and no route changes anything. It must never be imported by
// anything but cli.
package web
