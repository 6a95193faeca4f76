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
path. Exit 0 when all are valid, 2 otherwise.`,
		setup: func(fs *pflag.FlagSet) runFunc {
			asJSON := fs.Bool("json", false, "print the result as JSON")
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if len(args) == 0 {
					return exitf(ExitUsage, "validate needs at least one FILE or DIR")
				}
				wfs, err := workflow.LoadPaths(args)
				var probs workflow.Problems
				if err != nil && !errors.As(err, &probs) {
					return withCode(ExitUsage, err)
				}
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
					fmt.Fprintf(m.Stdout, "ok  %s  (%s, %d tasks)\n", w.Source, w.Name, len(w.Tasks))
				}
				return nil
			}
		},
	})
}
