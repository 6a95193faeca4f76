// Package yamlcheck is the validation layer that PicoFlow's YAML files
// share: the workflow files (engine/workflow) and the global config
// (cli/config). One copy of:
//
//   - the problem list (Problem, Problems): every problem at once, each
//     with file, line, column and YAML path, formatted as
//     FILE:LINE:COL: PATH: MSG (did you mean "x"?) (hint: HINT);
//   - the node helpers of a Decoder: mappings with duplicate and unknown
//     keys reported (Mapping, Entries, Require), YAML merge keys, scalars
//     of each kind (Str, Text, Integer, Boolean, Number), YAML syntax
//     errors with 1-based lines (Syntax);
//   - the alias budget: every node visited, alias expansions included, is
//     charged to Decoder.Budget, so that a small file of nested aliases
//     or merge keys ("billion laughs") is reported, not walked;
//   - the one "did you mean" of PicoFlow (Suggest), which commands and
//     secret names use too.
//
// It is a leaf: it must never import another PicoFlow package, so that
// every layer may use it, and never do I/O.
package yamlcheck
