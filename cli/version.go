package cli

import (
	"context"
	"fmt"
	"runtime"

	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "version",
		summary: "print the version",
		setup: func(fs *pflag.FlagSet) runFunc {
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				fmt.Fprintf(m.Stdout, "picoflow %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return nil
			}
		},
	})
}
