// Package config owns PicoFlow's global configuration file: where it is
// looked for, its schema, its defaults and its validation.
//
// The file is YAML (see Example for every key). Find picks it: the --config
// flag or $PICOFLOW_CONFIG when given (it must exist), else HOME/config.yaml,
// else /etc/picoflow/config.yaml; a missing default file means built-in
// defaults. Parse walks the yaml.Node tree rather than decoding into
// structs, so that every problem carries its line, column and YAML path,
// and it reports all problems at once, each formatted as
//
//	FILE:LINE:COL: PATH: MSG (did you mean "x"?) (hint: HINT)
//
// Unknown keys are errors with the closest known key as a suggestion.
//
// Secrets are only declared here ({env: VAR} or {file: /path}); their
// values are read at run time by executors/secret. CheckFiles is the
// file-system half of validation (`picoflow validate --config`): it checks
// that secret files exist and that others cannot read them.
//
// The package must never read a secret's value, never apply the settings
// it parses (the cli does: memory limit, GOGC, home, log format) and never
// import other PicoFlow packages than the leaf engine/yamlcheck, the
// validation layer it shares with workflow files, and executors for the
// one check of environment variable names.
package config
