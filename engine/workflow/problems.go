package workflow

import "github.com/picoflow/picoflow/engine/yamlcheck"

// Problem and Problems are the validation layer's (engine/yamlcheck),
// shared with the global config: Load, Parse and LoadPaths return a
// Problems value as their error.
type (
	Problem  = yamlcheck.Problem
	Problems = yamlcheck.Problems
)
