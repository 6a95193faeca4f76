package cli

import (
	"context"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "schema",
		summary: "print the JSON Schema of workflow files, for editors",
		long: `Prints the JSON Schema (draft 2020-12) of workflow files. Editors that use
yaml-language-server (VS Code's YAML extension, Neovim with yamlls) complete
keys and flag mistakes while you type when a workflow starts with

  # yaml-language-server: $schema=/usr/share/picoflow/workflow.schema.json

(the Debian package installs the schema there; elsewhere save it with
picoflow schema > workflow.schema.json and name that path). The schema checks
structure and types; picoflow validate checks everything.`,
		setup: func(fs *pflag.FlagSet) runFunc {
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if len(args) != 0 {
					return exitf(ExitUsage, "schema takes no arguments")
				}
				_, err := m.Stdout.Write(workflow.Schema())
				return err
			}
		},
	})
}
