package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "validate",
		args:    "FILE|DIR...",
		summary: "check workflow files and print every problem",
		long: `Checks syntax and semantics of each workflow (a directory means every
*.yaml and *.yml in it) and prints every problem with file, line and YAML
path. With --config FILE (or $PICOFLOW_CONFIG) the global config file is
checked too, including the permissions of its secret files. Exit 0 when
all are valid, 2 otherwise.`,
		setup: func(fs *pflag.FlagSet) runFunc {
			asJSON := fs.Bool("json", false, "print the result as JSON")
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if len(args) == 0 && g.config == "" {
					return exitf(ExitUsage, "validate needs at least one FILE or DIR, or --config FILE")
				}
				var wfs []*workflow.Workflow
				var probs workflow.Problems
				if len(args) > 0 {
					var err error
					wfs, err = workflow.LoadPathsWith(args, m.validateBase(g))
					if err != nil && !errors.As(err, &probs) {
						return withCode(ExitUsage, err)
					}
				}
				cfgOK, cfgProbs := checkConfig(g.config)
				probs = append(probs, cfgProbs...)
				if *asJSON {
					type out struct {
						Valid    []string           `json:"valid"`
						Problems []workflow.Problem `json:"problems"`
					}
					o := out{Valid: []string{}, Problems: probs}
					if o.Problems == nil {
						o.Problems = []workflow.Problem{}
					}
					for _, w := range wfs {
						o.Valid = append(o.Valid, w.Source)
					}
					if cfgOK {
						o.Valid = append(o.Valid, g.config)
					}
					enc := json.NewEncoder(m.Stdout)
					enc.SetIndent("", "  ")
					if err := enc.Encode(o); err != nil {
						return err
					}
					if len(probs) > 0 {
						return exitf(ExitUsage, "")
					}
					return nil
				}
				if len(probs) > 0 {
					fmt.Fprintln(m.Stderr, probs.Error())
					return exitf(ExitUsage, "%d problem(s) found", len(probs))
				}
				for _, w := range wfs {
					n, hs := len(w.DAG()), ""
					if h := len(w.Tasks) - n; h > 0 {
						hs = fmt.Sprintf(", %d handlers", h)
					}
					fmt.Fprintf(m.Stdout, "ok  %s  (%s, %d tasks%s)\n", w.Source, w.Name, n, hs)
				}
				if cfgOK {
					fmt.Fprintf(m.Stdout, "ok  %s  (global config)\n", g.config)
				}
				return nil
			}
		},
	})
}
