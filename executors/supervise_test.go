package executors

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestSuperviseProcess checks the three ways a supervised process ends:
// on its own (no stop, no note), on its timeout and on a cancelled
// context (a note, then stop, whose result is returned once it has
// returned). wait blocks until stop lets the "process" end, as a real
// one ends on its signal.
func TestSuperviseProcess(t *testing.T) {
	errExit := errors.New("exit status 3")
	errKilled := errors.New("signal: terminated")
	tests := []struct {
		name     string
		timeout  time.Duration
		cancel   bool
		endsSelf bool
		status   Status
		err      error
		note     string
	}{
		{name: "ends-on-its-own", timeout: time.Hour, endsSelf: true, status: Success, err: errExit},
		{name: "timeout", timeout: time.Millisecond, status: TimedOut, err: errKilled,
			note: "timeout of 1ms reached: stopping the task (SIGTERM, then SIGKILL after 2s)"},
		{name: "cancelled", cancel: true, status: Interrupted, err: errKilled,
			note: "PicoFlow is shutting down: stopping the task (SIGTERM, then SIGKILL after 2s)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			req := &Request{Timeout: tc.timeout, Stdout: &log}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			signalled := make(chan struct{})
			stops, stopReturned := 0, false
			wait := func() error {
				if tc.endsSelf {
					return errExit
				}
				<-signalled
				return errKilled
			}
			stop := func(grace time.Duration, done <-chan error) error {
				stops++
				if grace != 2*time.Second {
					t.Errorf("stop got grace %s, want the default 2s", grace)
				}
				close(signalled) // SIGTERM: the process ends
				err := <-done
				stopReturned = true
				return err
			}
			status, err := SuperviseProcess(ctx, req, 2*time.Second, wait, stop)
			if status != tc.status || err != tc.err {
				t.Errorf("got %s, %v; want %s, %v", status, err, tc.status, tc.err)
			}
			if want := tc.status != Success; stops != btoi(want) || stopReturned != want {
				t.Errorf("stop called %d times, returned before Supervise: %v; want %v", stops, stopReturned, want)
			}
			if got := log.String(); tc.note == "" && got != "" || !strings.Contains(got, tc.note) {
				t.Errorf("log %q, want the note %q", got, tc.note)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
