package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/picoflow/picoflow/cli/dag"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/journal"
	"github.com/spf13/pflag"
)

// graphFormats are the formats of picoflow graph.
var graphFormats = []string{"svg", "dot", "mermaid"}

func init() {
	register(&command{
		name:    "graph",
		args:    "FILE|WORKFLOW",
		summary: "draw a workflow's task graph (SVG, Graphviz DOT or Mermaid)",
		long: `Writes the DAG of a workflow to stdout: each task with its type, an edge
from each dependency to its dependent. WORKFLOW is a name looked up in the
workflows directory (as for picoflow daemon); a FILE is read as it is.

svg is laid out in layers by dependency depth (each task one layer right
of its deepest dependency), as the web UI's run page draws it; dot is for
Graphviz (dot -Tsvg); mermaid is a flowchart to paste into Markdown.

With --run RUN_ID the graph is the definition that run recorded (FILE or
WORKFLOW may then be left out) and each task is coloured by its status in
that run, as in the web UI.

  picoflow graph backup.yaml --format svg > backup.svg
  picoflow graph backup --format dot | dot -Tpng > backup.png
  picoflow graph --run 20261125-193700 --format mermaid`,
		setup: func(fs *pflag.FlagSet) runFunc {
			format := fs.String("format", "svg", "output format: "+strings.Join(graphFormats, ", "))
			dir := fs.String("workflows", "", "directory of workflow files (default: as for picoflow daemon)")
			run := fs.String("run", "", "colour the tasks by their status in run RUN_ID, drawn with its recorded definition")
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if len(args) > 1 || len(args) == 0 && *run == "" {
					return exitf(ExitUsage, "graph needs one workflow FILE or WORKFLOW name, or --run RUN_ID")
				}
				draw := graphWriter(*format)
				if draw == nil {
					return exitf(ExitUsage, "--format %q: want %s%s", *format, strings.Join(graphFormats, ", "), suggest(*format, graphFormats))
				}
				var wf *workflow.Workflow
				var nodes []dag.Node
				var err error
				if *run != "" {
					wf, nodes, err = runGraph(m, g, *run)
				} else {
					var wfs []*workflow.Workflow
					if wfs, err = m.loadWorkflows(g, args, *dir); err == nil {
						wf, nodes = wfs[0], graphNodes(wfs[0])
					}
				}
				if err != nil {
					return err
				}
				if len(args) == 1 && *run != "" && !isFileArg(args[0]) && args[0] != wf.Name {
					return exitf(ExitUsage, "run %s is a run of %s, not of %s", *run, wf.Name, args[0])
				}
				if err := draw(m.Stdout, wf.Name, nodes); err != nil {
					return withCode(ExitInternal, err)
				}
				return nil
			}
		},
	})
}

// graphWriter returns the writer of a format, nil for an unknown one.
func graphWriter(format string) func(w io.Writer, name string, nodes []dag.Node) error {
	switch format {
	case "svg":
		return func(w io.Writer, _ string, nodes []dag.Node) error {
			return dag.SVG(w, nodes, dag.Options{Standalone: true})
		}
	case "dot":
		return dag.DOT
	case "mermaid":
		return func(w io.Writer, _ string, nodes []dag.Node) error { return dag.Mermaid(w, nodes) }
	}
	return nil
}

// graphNodes are a definition's tasks as graph nodes, in file order.
func graphNodes(wf *workflow.Workflow) []dag.Node {
	nodes := make([]dag.Node, len(wf.Tasks))
	for i, t := range wf.Tasks {
		var deps []int
		for _, d := range wf.Deps(i) {
			deps = append(deps, int(d))
		}
		nodes[i] = dag.Node{Name: t.Name, Kind: t.Type(), Deps: deps, Tooltip: fmt.Sprintf("%s (%s)", t.Name, t.Type())}
	}
	return nodes
}

// runGraph returns the definition run id recorded and its tasks coloured
// by their status in it: the fold replay prints.
func runGraph(m *Main, g *globals, id string) (*workflow.Workflow, []dag.Node, error) {
	srcs, where, err := replaySources(home(g.home), "")
	if err != nil {
		return nil, nil, withCode(ExitInternal, err)
	}
	id, events, err := readRun(srcs, m.Stderr, where, id, span{})
	if err != nil {
		return nil, nil, err
	}
	rp, err := foldEvents(id, events, func(*journal.Event) bool { return false }, parser(workflowBase(g.cfg)))
	if err != nil {
		return nil, nil, err
	}
	if rp.wf == nil {
		return nil, nil, exitf(ExitInternal, "the definition run %s recorded does not parse with this picoflow", id)
	}
	nodes := graphNodes(rp.wf)
	for i := range nodes {
		status := "pending"
		if t := rp.run.Tasks[nodes[i].Name]; t != nil {
			status = t.Status.String()
		}
		nodes[i].Status = status
		nodes[i].Tooltip += ": " + status
	}
	return rp.wf, nodes, nil
}
