//go:build !linux

package engine

import (
	"errors"
	"os"
)

var errNoUnnamed = errors.ErrUnsupported

// openUnnamed: only Linux has O_TMPFILE; elsewhere there is no head start.
func openUnnamed(dir, path string) (*os.File, error) { return nil, errNoUnnamed }

func linkUnnamed(f *os.File, path string) error { return errNoUnnamed }
