// Package schedule is the daemon's scheduling logic, and nothing else: when
// a workflow's cron schedule fires (Schedule.Next), which fires missed
// while the daemon was not running are caught up (Missed), and what happens
// when a fire is due while the previous run still runs (Scheduler, the
// overlap policies). It is pure: every function takes the current time as
// an argument, so tests drive it with an injected clock and never wait.
//
// # Fire times and daylight saving time
//
// Schedules are parsed by github.com/robfig/cron/v3 (five fields, an
// optional leading seconds field, @hourly/@daily/... descriptors, @every
// DURATION, a CRON_TZ=Zone prefix), but Next is computed here: the
// library's own Next mishandles daylight saving transitions (it fires a
// job in a repeated hour twice, and silently drops a job whose wall time a
// spring-forward skips). Next matches the schedule against wall-clock time
// in the schedule's zone, one zone period (ZoneBounds) at a time, with the
// semantics of ISC cron:
//
//   - A fixed-time schedule (its second, minute and hour fields are not
//     "*"), such as "30 2 * * *": a wall time skipped by a spring-forward
//     fires once, at the first instant after the gap; a wall time repeated
//     by a fall-back fires once, at its first occurrence.
//   - A wildcard schedule (second, minute or hour field starting with "*",
//     and @hourly), such as "*/15 * * * *": it follows real time. Wall
//     times in a gap do not exist and do not fire; in a repeated hour it
//     fires in both passes, so "every 15 minutes" stays every 15 minutes.
//   - @every DURATION counts real time from the previous fire.
//
// # Catch-up
//
// Missed computes, from the last fire recorded in the journal, the fires
// that fell while the daemon was not running (or the machine slept) and
// which of them to run now: none, the latest, or all (at most MaxCatchup)
// within the catch-up window.
//
// The package must never do I/O, read the wall clock, start goroutines or
// import another PicoFlow package: the daemon (cli/daemon) journals and
// executes the Actions it returns.
package schedule
