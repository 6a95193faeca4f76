// Package yamlcheck is the validation layer that PicoFlow's YAML files
// share: the workflow files (engine/workflow) and the global config
// (cli/config). It holds the one "did you mean" of PicoFlow (Suggest),
// which commands and secret names use too.
//
// It is a leaf: it must never import another PicoFlow package, so that
// every layer may use it, and never do I/O.
package yamlcheck
