package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/picoflow/picoflow/cli/daemon"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "trigger",
		args:    "WORKFLOW",
		summary: "start a run of a workflow now, through the running daemon",
		long: `Asks the daemon of this home (over HOME/daemon.sock) to start a run of
WORKFLOW, by name, with trigger "manual", and prints the run id once the
run is on the journal. The daemon refuses while a run of the workflow is in
progress unless its overlap policy is allow or --force is given.

Exit codes: 0 started, 2 undeclared --param, 5 a run is in progress (in
the daemon, or in another process: the message names its PID), 8 no such
workflow, 9 no daemon runs for this home.`,
		setup: func(fs *pflag.FlagSet) runFunc {
			params := fs.StringArray("param", nil, "KEY=VALUE overriding the workflow's env for this run (repeatable)")
			force := fs.Bool("force", false, "start even while a run of the workflow is in progress")
			asJSON := fs.Bool("json", false, "print the daemon's answer as JSON")
			timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the daemon")
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if len(args) != 1 {
					return exitf(ExitUsage, "trigger needs exactly one WORKFLOW name")
				}
				req := daemon.Request{Op: daemon.OpTrigger, Workflow: args[0], Force: *force}
				for _, kv := range *params {
					k, v, ok := strings.Cut(kv, "=")
					if !ok || k == "" {
						return exitf(ExitUsage, "--param %q: want KEY=VALUE", kv)
					}
					if req.Params == nil {
						req.Params = make(map[string]string)
					}
					req.Params[k] = v
				}
				h := home(g.home)
				ctx, cancel := context.WithTimeout(ctx, *timeout)
				defer cancel()
				resp, err := daemon.Call(ctx, h.daemonSocket(), req)
				if errors.Is(err, daemon.ErrNoDaemon) {
					return exitf(ExitNoDaemon, "%v.\n  start it: picoflow daemon --home %s (or systemctl start picoflow)\n"+
						"  or run the file directly: picoflow run FILE", err, h)
				}
				if err != nil {
					return withCode(ExitInternal, err)
				}
				if *asJSON {
					if err := json.NewEncoder(m.Stdout).Encode(resp); err != nil {
						return err
					}
				}
				if !resp.OK {
					return withCode(triggerExit(resp.Code), fmt.Errorf("daemon: %s", resp.Error))
				}
				if !*asJSON {
					fmt.Fprintln(m.Stdout, resp.Run)
				}
				return nil
			}
		},
	})
}

// triggerExit maps a control response code to an exit code.
func triggerExit(code string) int {
	switch code {
	case daemon.CodeNotFound:
		return ExitNotFound
	case daemon.CodeBusy:
		return ExitLocked
	case daemon.CodeInvalid:
		return ExitUsage
	case daemon.CodeStopping:
		return ExitNoDaemon
	}
	return ExitInternal
}
