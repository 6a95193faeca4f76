package secret

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/picoflow/picoflow/executors"
)

// Wrap returns an executor that runs each attempt of ex with its
// references resolved and its output masked:
//
//   - the task's config strings (and its JSON body, headers and env map)
//     are expanded into a copy of the task, so ex never sees a reference;
//   - the TaskEnv values named by Request.RefKeys are expanded, in TaskEnv
//     and in Env; no other value is touched;
//   - every configured secret is read again (MaskAll), so that a rotated
//     secret file's new value is masked whether or not the task uses it;
//   - once any secret is known, Stdout and Stderr become masking writers
//     over the attempt's streams, flushed before Execute returns.
//
// A reference that cannot be resolved fails the attempt with NoRetry.
// Close closes ex when it has a Close method.
func (s *Store) Wrap(ex executors.Executor) executors.Executor {
	return &wrapped{s: s, ex: ex}
}

type wrapped struct {
	s  *Store
	ex executors.Executor
}

var _ executors.Gater = (*wrapped)(nil)

func (w *wrapped) Close() error {
	if c, ok := w.ex.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Gates passes on whether the wrapped executor gates: resolving the
// task's references runs none of its code.
func (w *wrapped) Gates() bool { return executors.Gates(w.ex) }

func (w *wrapped) Execute(ctx context.Context, req *executors.Request) executors.Result {
	w.s.MaskAll() // a secret file rotated since is masked too, referenced or not
	r := *req
	t, err := w.s.resolveTask(req.Task)
	if err != nil {
		return executors.Result{Status: executors.Failed, ExitCode: -1, NoRetry: true, Err: err}
	}
	r.Task = t
	if len(req.RefKeys) > 0 {
		env, err := w.s.resolveEnv(req.TaskEnv, req.RefKeys)
		if err != nil {
			return executors.Result{Status: executors.Failed, ExitCode: -1, NoRetry: true, Err: err}
		}
		r.Env = replaceTail(req.Env, req.TaskEnv, env)
		r.TaskEnv = env
	}
	if w.s.red.Len() == 0 {
		return w.ex.Execute(ctx, &r)
	}
	so, se := req.Streams()
	mo, me := w.s.red.Writer(so), w.s.red.Writer(se)
	r.Stdout, r.Stderr = mo, me
	res := w.ex.Execute(ctx, &r)
	err = mo.Flush()
	if err2 := me.Flush(); err == nil {
		err = err2
	}
	executors.LogFailed(req, &res, err)
	return res
}

// resolveEnv expands the values of the KEY=VALUE entries whose key is in
// keys, into a new slice.
func (s *Store) resolveEnv(env []string, keys map[string]bool) ([]string, error) {
	out := make([]string, len(env))
	for i, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		out[i] = kv
		if !keys[k] {
			continue
		}
		x, err := s.Expand(v)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", k, err)
		}
		out[i] = k + "=" + x
	}
	return out, nil
}

// replaceTail returns env with its tail old replaced by repl, or with repl
// appended when old is not its tail (the last value of a key wins).
func replaceTail(env, old, repl []string) []string {
	base := env
	if n := len(env) - len(old); n >= 0 && slices.Equal(env[n:], old) {
		base = env[:n]
	}
	out := make([]string, 0, len(base)+len(repl))
	return append(append(out, base...), repl...)
}

// resolveTask returns a copy of t with every string that may hold a
// reference expanded. The definition's Task is shared and never modified.
func (s *Store) resolveTask(t *executors.Task) (*executors.Task, error) {
	e := expander{s: s}
	c := t.MapStrings(e.str)
	if e.err != nil {
		return nil, e.err
	}
	return c, nil
}

// expander expands strings until the first error, which it keeps.
type expander struct {
	s   *Store
	err error
}

func (e *expander) str(path, v string) string {
	if e.err != nil || !strings.Contains(v, "${") {
		return v
	}
	x, err := e.s.Expand(v)
	if err != nil {
		e.err = fmt.Errorf("%s: %w", path, err)
		return v
	}
	return x
}
