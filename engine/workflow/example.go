package workflow

import (
	_ "embed"
	"slices"
)

//go:embed example.yaml
var example []byte

// Example returns a commented example workflow that uses every core field.
// It runs in seconds on any Linux box with /bin/sh and tar. The caller owns
// the returned slice.
func Example() []byte {
	return slices.Clone(example)
}
