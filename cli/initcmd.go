package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "init",
		args:    "[DIR]",
		summary: "write a commented example workflow to DIR (default .)",
		long: `Writes DIR/example.yaml, a workflow that uses every core field and runs
on any Linux machine with /bin/sh. It never overwrites a file unless --force.`,
		setup: func(fs *pflag.FlagSet) runFunc {
			force := fs.Bool("force", false, "overwrite an existing example.yaml")
			name := fs.String("name", "example.yaml", "file name to write")
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if len(args) > 1 {
					return exitf(ExitUsage, "init takes at most one directory")
				}
				dir := "."
				if len(args) == 1 {
					dir = args[0]
				}
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return withCode(ExitInternal, err)
				}
				path := filepath.Join(dir, *name)
				flag := os.O_WRONLY | os.O_CREATE | os.O_EXCL
				if *force {
					flag = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
				}
				f, err := os.OpenFile(path, flag, 0o644)
				if errors.Is(err, os.ErrExist) {
					return exitf(ExitUsage, "%s exists; use --force to overwrite it", path)
				}
				if err != nil {
					return withCode(ExitInternal, err)
				}
				_, err = f.Write(workflow.Example())
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return withCode(ExitInternal, fmt.Errorf("write %s: %w", path, err))
				}
				fmt.Fprintf(m.Stdout, "wrote %s\nnext: picoflow validate %s && picoflow run %s\n", path, path, path)
				return nil
			}
		},
	})
}
