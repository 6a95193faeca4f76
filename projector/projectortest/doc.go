// Package projectortest writes deterministic journals (fixed timestamps,
// fixed run ids) and their log files for the tests and benchmarks of the
// projector and of the commands that read it: Scenario (seven runs
// covering every event type and outcome) and Generate (many uniform runs).
//
// It is imported by tests only; it must never be imported by code that
// ships, and never write outside the directory it is given.
package projectortest
