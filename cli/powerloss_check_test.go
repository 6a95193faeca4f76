//go:build linux

package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The checks of the power-loss torture (TestPowerLoss): history against
// the journal, the ledger, the home; and the in-doubt resolutions.

// plRun is one run of history --json, or the final_state line of replay
// --json (which has no run_id): the fields both print alike.
type plRun struct {
	RunID  string `json:"run_id"`
	Status string `json:"status"`
	Tasks  []struct {
		Name     string `json:"name"`
		Status   string `json:"status"`
		Attempts int    `json:"attempts"`
	} `json:"tasks"`
}

func (tr *trial) history() []plRun {
	code, out, errs := tr.cmd("history", "--json", "--limit", "0")
	if strings.Contains(errs, "rebuilding") {
		tr.sum.rebuilds++ // the projection lost commits or the journal moved on
	}
	if code == ExitNotFound && strings.Contains(errs, "no PicoFlow home") ||
		code == ExitOK && strings.TrimSpace(out) == "" {
		return nil // nothing of the home was durable yet
	}
	var runs []plRun
	if code != ExitOK || json.Unmarshal([]byte(out), &runs) != nil {
		tr.violation("history --json exited %d\n%s%s", code, out, errs)
	}
	return runs
}

func (tr *trial) replay(run string) *plRun {
	code, out, errs := tr.cmd("replay", "--json", run)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var st plRun
	if code != ExitOK || json.Unmarshal([]byte(lines[len(lines)-1]), &st) != nil {
		tr.violation("replay --json %s exited %d\n%s%s", run, code, out, errs)
		return nil
	}
	return &st
}

// checkProjection compares history --json (SQLite, caught up first) with
// replay --json (the journal) for every run.
func (tr *trial) checkProjection(when string) {
	runs := tr.history()
	for _, r := range runs {
		tr.runs[r.RunID] = true
		st := tr.replay(r.RunID)
		if st == nil {
			continue
		}
		finished := func(s string) bool { return s == "success" || s == "failed" || s == "canceled" }
		if finished(r.Status) != finished(st.Status) || finished(r.Status) && r.Status != st.Status {
			tr.violation("%s: run %s is %s in history, %s in the journal", when, r.RunID, r.Status, st.Status)
		}
		type task struct {
			status   string
			attempts int
		}
		journaled := map[string]task{}
		for _, k := range st.Tasks {
			journaled[k.Name] = task{k.Status, k.Attempts}
		}
		final := func(s string) bool { return s == "success" || s == "failed" || s == "skipped" }
		for _, k := range r.Tasks {
			j := journaled[k.Name]
			if k.Attempts != j.attempts || final(k.Status) != final(j.status) || final(k.Status) && k.Status != j.status {
				tr.violation("%s: run %s task %s: %s after %d attempts in history, %s after %d in the journal",
					when, r.RunID, k.Name, k.Status, k.Attempts, j.status, j.attempts)
			}
		}
	}
}

// resolveAll settles every in-doubt task of every run from the ledger:
// succeeded if its last attempt wrote its end line, else rerun.
func (tr *trial) resolveAll() {
	ledger := tr.ledger()
	for run := range tr.runs {
		st := tr.replay(run)
		if st == nil {
			continue
		}
		for _, k := range st.Tasks {
			if k.Status != "in_doubt" {
				continue
			}
			how := "--rerun"
			for i := len(ledger) - 1; i >= 0; i-- {
				if l := ledger[i]; l.run == run && l.task == k.Name {
					if l.end {
						how = "--succeeded"
					}
					break
				}
			}
			if how == "--rerun" {
				tr.reruns[run+" "+k.Name]++
			}
			if code, out, errs := tr.cmd("resolve", run, k.Name, how); code != ExitOK {
				tr.violation("resolve %s %s %s exited %d\n%s%s", run, k.Name, how, code, out, errs)
			}
			tr.sum.resolves++
		}
	}
}

// finishAll resumes every run that has not finished (the daemon's, or a
// run interrupted by the last cut) until all have, and checks that each
// succeeded.
func (tr *trial) finishAll() {
	for step := 0; ; step++ {
		var open []string
		for _, r := range tr.history() {
			if r.Status != "success" && r.Status != "failed" && r.Status != "canceled" {
				open = append(open, r.RunID)
			}
		}
		if len(open) == 0 {
			break
		}
		if step == 30 {
			tr.violation("runs never finished: %v", open)
			return
		}
		for _, run := range open {
			code, out, errs := tr.cmd("resume", run)
			switch code {
			case ExitOK:
			case ExitInDoubt:
				tr.resolveAll()
			default:
				tr.violation("resume %s exited %d\n%s%s", run, code, out, errs)
				return
			}
		}
	}
	tr.checkProjection("at the end")
	runs := tr.history()
	tr.sum.runs += len(runs)
	if len(runs) == 0 {
		tr.violation("no run in history")
	}
	for _, r := range runs {
		if r.Status != "success" {
			tr.violation("run %s ended %s", r.RunID, r.Status)
		}
	}
	for run := range tr.runs {
		if tr.gcKeeps != "" && run != tr.gcKeeps {
			continue // gc may have removed it
		}
		if !slices.ContainsFunc(runs, func(r plRun) bool { return r.RunID == run }) {
			tr.violation("run %s was started but is not in history", run)
		}
	}
}

type ledgerLine struct {
	end       bool
	run, task string
}

func (tr *trial) ledger() []ledgerLine {
	b, err := os.ReadFile(filepath.Join(tr.dir, "ledger"))
	if err != nil && !os.IsNotExist(err) {
		tr.t.Fatal(err)
	}
	var ls []ledgerLine
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 { // a line cut by SIGKILL
			continue
		}
		ls = append(ls, ledgerLine{end: f[0] == "end", run: f[1], task: f[2]})
	}
	return ls
}

// checkLedger: a task whose success was reported (a dependent started,
// the run exited 0, or picoflow printed "ok TASK") never starts again, and
// a non-idempotent task starts at most once plus once per rerun.
func (tr *trial) checkLedger() {
	deps := map[string][]string{}
	nonIdem := map[string]bool{}
	for _, k := range tr.tasks {
		deps[k.name] = k.deps
		nonIdem[k.name] = k.nonIdem
	}
	reported := map[string]bool{} // "run task"
	starts := map[string]int{}
	for i, l := range tr.ledger() {
		if l.end {
			continue
		}
		key := l.run + " " + l.task
		if reported[key] {
			tr.violation("task %s of run %s ran again after its success was reported (ledger line %d)", l.task, l.run, i+1)
		}
		if at, ok := tr.okPrinted[key]; ok && i >= at {
			tr.violation("task %s of run %s ran again after picoflow printed \"ok %s\" (ledger line %d)", l.task, l.run, l.task, i+1)
		}
		if at, ok := tr.okAt[l.run]; ok && i >= at {
			tr.violation("task %s of run %s ran after the run exited 0", l.task, l.run)
		}
		starts[key]++
		if nonIdem[l.task] && starts[key] > 1+tr.reruns[key] {
			tr.violation("non-idempotent task %s of run %s started %d times with %d reruns resolved",
				l.task, l.run, starts[key], tr.reruns[key])
		}
		for _, d := range deps[l.task] {
			reported[l.run+" "+d] = true
		}
	}
}

// checkHome: the file system holds the home and nothing else, and the
// workflow file is as written.
func (tr *trial) checkHome() {
	ents, err := os.ReadDir(tr.mnt)
	if err != nil {
		tr.t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "home" {
			tr.violation("%s appeared beside the home", e.Name())
		}
	}
	// Beside the file system only the test's own files, and the tasks'.
	ents, err = os.ReadDir(tr.dir)
	if err != nil {
		tr.t.Fatal(err)
	}
	for _, e := range ents {
		switch n := e.Name(); {
		case n == "backing" || n == "mnt" || n == "ledger" || n == "pl.yaml" || n == "workflows" || n == "config.yaml":
		case strings.HasPrefix(n, "count."):
		default:
			tr.violation("%s appeared outside the home", filepath.Join(tr.dir, n))
		}
	}
	if b, err := os.ReadFile(tr.file); err != nil || !bytes.Equal(b, tr.wfBytes) {
		tr.violation("the workflow file changed: %v", err)
	}
	// Locks, logs and output files are recreated by the commands after a
	// cut (which all succeeded); the database must be back too.
	if _, err := os.Stat(filepath.Join(tr.home, "picoflow.db")); err != nil {
		tr.violation("after the last history: %v", err)
	}
}
