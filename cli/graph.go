package cli

import (
	"context"
	"fmt"

	"github.com/picoflow/picoflow/cli/dag"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "graph",
		args:    "FILE|WORKFLOW",
		summary: "draw a workflow's task graph (SVG)",
		long: `Writes the DAG of a workflow to stdout, laid out in layers by dependency
depth (each task one layer right of its deepest dependency), as the web
UI's run page draws it. WORKFLOW is a name looked up in the workflows
directory (as for picoflow daemon); a FILE is read as it is.

  picoflow graph backup.yaml --format svg > backup.svg`,
		setup: func(fs *pflag.FlagSet) runFunc {
			format := fs.String("format", "svg", "output format: svg")
			dir := fs.String("workflows", "", "directory of workflow files (default: as for picoflow daemon)")
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if len(args) != 1 {
					return exitf(ExitUsage, "graph needs one workflow FILE or WORKFLOW name")
				}
				if *format != "svg" {
					return exitf(ExitUsage, "--format %q: only svg is supported%s", *format, suggest(*format, []string{"svg"}))
				}
				wfs, err := m.loadWorkflows(g, args, *dir)
				if err != nil {
					return err
				}
				if err := dag.SVG(m.Stdout, graphNodes(wfs[0]), dag.Options{Standalone: true}); err != nil {
					return withCode(ExitInternal, err)
				}
				return nil
			}
		},
	})
}

// graphNodes are a definition's tasks as graph nodes, in file order.
func graphNodes(wf *workflow.Workflow) []dag.Node {
	nodes := make([]dag.Node, len(wf.Tasks))
	for i, t := range wf.Tasks {
		nodes[i] = dag.Node{Name: t.Name, Deps: t.Deps, Tooltip: fmt.Sprintf("%s (%s)", t.Name, t.Type)}
	}
	return nodes
}
