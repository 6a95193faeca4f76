package daemon

import (
	"errors"
	"strings"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/journal"
)

// Resolutions of an in-doubt task (Request.Status of OpResolve).
const (
	ResolveSucceeded = journal.StatusSuccess
	ResolveFailed    = journal.StatusFailed
	ResolveRerun     = journal.StatusRerun
)

// RefusedError is a request refused for a reason the client reports with
// its own exit code: Code is one of the Code constants.
type RefusedError struct {
	Code string
	Msg  string
}

func (e *RefusedError) Error() string { return e.Msg }

// Resolve settles an in-doubt task with engine.Resolve and turns its
// refusals into a RefusedError, whether the CLI writes the journal or
// hands the request to the daemon.
func Resolve(j engine.Journal, st *engine.State, run, task, status, note string, now time.Time) error {
	_, err := engine.Resolve(j, st, run, task, status, note, now)
	var code string
	var why error
	switch {
	case errors.Is(err, engine.ErrNoRun):
		code, why = CodeNotFound, engine.ErrNoRun
	case errors.Is(err, engine.ErrNotInDoubt):
		code, why = CodeInvalid, engine.ErrNotInDoubt
	case errors.Is(err, engine.ErrBadResolution):
		code, why = CodeInvalid, engine.ErrBadResolution
	default:
		return err
	}
	// The message without the sentinel's words, as the user saw it before.
	return &RefusedError{Code: code, Msg: strings.TrimSuffix(err.Error(), ": "+why.Error())}
}
