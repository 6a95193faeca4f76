package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/executors"
	"github.com/picoflow/picoflow/journal"
)

const (
	// OutputCap bounds what a task may pass on through $PICOFLOW_OUTPUT.
	OutputCap = 64 << 10
	// TailSize is how much of a failed attempt's log the journal keeps.
	TailSize = 1 << 10
)

func runLogDir(logDir, wf, run string) string { return filepath.Join(logDir, wf, run) }

func (x *runner) logPath(i, attempt int) string {
	return attemptLog(x.logDir, x.wf.Tasks[i].Name, attempt)
}

// attemptLog is the log path of attempt number attempt of task in the run
// log directory dir.
func attemptLog(dir, task string, attempt int) string {
	return filepath.Join(dir, fmt.Sprintf("%s.%d.log", task, attempt))
}

// request builds the executor request of attempt number attempt of task
// i, which the pending batch starts (or the spare will: spare.go). It runs
// on the loop goroutine, before that batch is committed: it reads the
// upstream outputs as the batch leaves them (view).
func (x *runner) request(i, attempt int) *executors.Request {
	t := x.wf.Tasks[i]
	out := filepath.Join(x.logDir, fmt.Sprintf("%s.%d.out", t.Name, attempt))
	env := make([]string, 0, len(x.e.opts.Env)+len(x.wf.Env)+len(t.Env)+8)
	env = append(env, x.e.opts.Env...)
	base := len(env)
	env = appendMap(env, x.wf.Env, x.r.Params)
	for _, v := range t.Env { // sorted by name
		env = append(env, v.Name+"="+v.Value)
	}
	refKeys := defRefKeys(x.wf.Env, x.r.Params, t.Env)
	defEnd := len(env)
	env = append(env,
		"PICOFLOW_RUN_ID="+x.r.ID,
		"PICOFLOW_WORKFLOW="+x.wf.Name,
		"PICOFLOW_TASK="+t.Name,
		"PICOFLOW_ATTEMPT="+strconv.Itoa(attempt),
		"PICOFLOW_OUTPUT="+out,
	)
	deps := x.wf.Deps(i)
	if t.IsHandler() { // a handler sees the outputs of the whole DAG
		env = append(env, x.handlerEnv()...)
		deps = make([]int32, len(x.wf.DAG()))
		for i := range deps {
			deps[i] = int32(i)
		}
	}
	for _, d := range deps {
		name := x.wf.Tasks[d].Name
		outs := x.view(int(d)).Outputs()
		keys := make([]string, 0, len(outs))
		for k := range outs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			env = append(env, workflow.OutputVar(name, k)+"="+outs[k])
		}
	}
	for _, kv := range env[defEnd:] { // engine values shadow definition ones
		k, _, _ := strings.Cut(kv, "=")
		delete(refKeys, k)
	}
	run, task := x.r.ID, t.Name
	j := x.e.opts.Journal
	clock := x.e.opts.Clock
	procs := x.procs
	return &executors.Request{
		Run: x.r.ID, Workflow: x.wf.Name, Task: &t.Task, Attempt: attempt,
		Env: env, TaskEnv: env[base:len(env):len(env)], RefKeys: refKeys,
		Timeout: t.Timeout, KillGrace: x.e.opts.KillGrace,
		OutputFile: out,
		Started: func(pgid int) {
			// Lazy: on resume leftovers are found by their PICOFLOW_RUN_ID
			// even if this entry was lost.
			ev := &journal.Event{Type: journal.TaskProcess, Time: clock().UnixNano(),
				Run: run, Task: task, Attempt: attempt, PGID: pgid}
			if j.AppendLazy(ev) == nil {
				procs <- ev // applied by the loop too, so the run agrees with a replay
			}
		},
	}
}

// defRefKeys returns the env keys whose final value is the definition's
// text and may hold a ${secret:...} or ${env:...} reference: the workflow's
// env unless a run parameter replaced it, and the task's env. Nil when
// there are none.
func defRefKeys(wfEnv, params map[string]string, taskEnv executors.Env) map[string]bool {
	var keys map[string]bool
	add := func(k, v string) {
		if strings.Contains(v, "${") {
			if keys == nil {
				keys = make(map[string]bool)
			}
			keys[k] = true
		} else {
			delete(keys, k)
		}
	}
	for k, v := range wfEnv {
		if _, ok := params[k]; !ok {
			add(k, v)
		}
	}
	for _, v := range taskEnv {
		add(v.Name, v.Value)
	}
	return keys
}

// appendMap appends KEY=VALUE for m in key order; values in over replace
// those of m (run parameters over workflow env).
func appendMap(env []string, m, over map[string]string) []string {
	keys := make([]string, 0, len(m)+len(over))
	for k := range m {
		keys = append(keys, k)
	}
	for k := range over {
		if _, ok := m[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, ok := over[k]
		if !ok {
			v = m[k]
		}
		env = append(env, k+"="+v)
	}
	return env
}

// spawn runs l's attempt on a goroutine that ran an earlier attempt of
// the run and waits for the next, else on a new one. A new goroutine's
// stack grows on the way to the fork (runtime.newstack copies it, about 4 %
// of the loop's CPU on 1,000 `true` tasks); a goroutine that ran an
// attempt has the stack an attempt needs. About as many goroutines wait
// as attempts ran at once; they end with the loop (execute closes idle).
// The attempt's context is the loop's killCtx when it spawns it: the loop
// may replace killCtx later (the handlers' own, dag.go), and a worker
// must not read the field.
func (x *runner) spawn(l launch) {
	l.ctx = x.killCtx
	select {
	case x.idle <- l:
	default:
		go x.worker(l)
	}
}

func (x *runner) worker(l launch) {
	for ok := true; ok; l, ok = <-x.idle {
		x.attempt(l.ctx, l)
	}
}

// attempt runs one attempt on its own goroutine and reports to the loop.
// It opens the attempt's log while the loop commits the batch that starts
// it, and runs it once l.gate says that batch is committed. An executor
// that gates (executors.Gater) is called at once and gets ready meanwhile:
// it asks Request.Commit before the task's code runs. A spare (spare.go)
// waits there until a batch starts it, or the loop dismisses it.
func (x *runner) attempt(ctx context.Context, l launch) {
	i, req := l.task, l.req
	a := attemptResult{task: i, attempt: req.Attempt}
	f, err := l.log, error(nil)
	if f == nil {
		f, err = x.logs.open(l.logPath)
	}
	ex := x.e.opts.Executors[x.wf.Tasks[i].Type()]
	clock := x.e.opts.Clock
	var start time.Time
	asked, word := false, gateShut
	commit := func(open func(ok bool)) bool {
		if !asked {
			asked, word = true, l.gate.wait(open)
			start = clock()
		}
		return word == gateOpen
	}
	gated := err == nil && ex != nil && executors.Gates(ex)
	if gated {
		req.Log, req.Commit = f, commit
		a.res = ex.Execute(ctx, req)
	}
	if !commit(nil) { // its start was not committed: it never ran
		if f != nil {
			x.logs.unused(f, word == gateDismissed)
		}
		// Made before the start for a user: task (executors/shell); it
		// holds nothing.
		_ = os.Remove(req.OutputFile)
		x.results <- attemptResult{task: i, attempt: req.Attempt, dismissed: word == gateDismissed}
		return
	}
	defer func() {
		a.took = clock().Sub(start)
		x.results <- a
	}()
	if err != nil {
		a.res = executors.Result{Status: executors.Failed, ExitCode: -1, Err: fmt.Errorf("open log: %w", err)}
		return
	}
	defer func() { x.logs.done(f, a.res.Status == executors.Success) }() // before the result is sent
	switch {
	case gated:
	case ex == nil:
		a.res = executors.Result{Status: executors.Failed, ExitCode: -1, NoRetry: true,
			Err: fmt.Errorf("no executor for task type %q in this build", x.wf.Tasks[i].Type())}
		return
	default:
		req.Log = f
		a.res = ex.Execute(ctx, req)
	}
	collect(&a, req, f)
}

// collect completes an ended attempt's result: a success's outputs (the
// file's and the executor's), a failure's log tail.
func collect(a *attemptResult, req *executors.Request, f *os.File) {
	switch a.res.Status {
	case executors.Success:
		outs, warn, err := readOutputs(req.OutputFile)
		if err != nil {
			a.res = executors.Result{Status: executors.Failed, NoRetry: true, Err: err}
			os.Remove(req.OutputFile)
			return
		}
		for k, v := range a.res.Outputs {
			if outs == nil {
				outs = make(map[string]string)
			}
			outs[k] = v
		}
		a.outputs, a.warn = outs, warn
		if outs != nil { // the file exists (most tasks never write one)
			os.Remove(req.OutputFile)
		}
	case executors.Failed, executors.TimedOut:
		a.tail = readTail(f, TailSize)
		fallthrough
	default:
		// Only a success passes outputs on: what a failed attempt wrote
		// (perhaps a secret's value) goes, rather than stay in the logs.
		os.Remove(req.OutputFile)
	}
}

// readTail returns up to n bytes from the end of f.
func readTail(f *os.File, n int64) string {
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := fi.Size() - n
	if off < 0 {
		off = 0
	}
	b := make([]byte, fi.Size()-off)
	k, _ := f.ReadAt(b, off)
	b = b[:k]
	if off > 0 { // start at a line boundary when one is near
		if j := bytes.IndexByte(b, '\n'); j >= 0 && j < len(b)-1 {
			b = b[j+1:]
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// readOutputs parses a $PICOFLOW_OUTPUT file: KEY=VALUE lines, up to
// OutputCap bytes. A missing file means no outputs.
func readOutputs(path string) (map[string]string, string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read outputs: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, OutputCap+1))
	if err != nil {
		return nil, "", fmt.Errorf("read outputs: %w", err)
	}
	warn := ""
	if len(data) > OutputCap {
		data = data[:OutputCap]
		if j := bytes.LastIndexByte(data, '\n'); j >= 0 {
			data = data[:j+1]
		}
		warn = fmt.Sprintf("$PICOFLOW_OUTPUT is larger than %d KiB: only the complete lines in the first %d KiB were kept", OutputCap>>10, OutputCap>>10)
	}
	outs := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), OutputCap)
	bad := 0
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !executors.ValidEnvName(k) {
			bad++
			continue
		}
		outs[k] = v
	}
	if bad > 0 {
		w := fmt.Sprintf("%d line(s) of $PICOFLOW_OUTPUT are not KEY=VALUE and were ignored", bad)
		if warn != "" {
			warn += "; " + w
		} else {
			warn = w
		}
	}
	return outs, warn, nil
}
