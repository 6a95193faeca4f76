package workflow

import _ "embed"

// schemaJSON is the JSON Schema (draft 2020-12) of workflow files, for
// editors: yaml-language-server completes and checks a workflow with it
// while it is typed. It describes the structure the decoder accepts; the
// checks a schema cannot express (cron syntax, time zones, task references,
// cycles, secret names, ${...} syntax) stay with validate. A conformance test
// (schema_test.go) feeds the schema and Parse the same corpus: every file
// the schema rejects, Parse rejects too, and every file Parse rejects for
// structural reasons, the schema rejects too.
//
//go:embed schema.json
var schemaJSON []byte

// Schema returns the JSON Schema of workflow files (picoflow schema).
func Schema() []byte { return append([]byte(nil), schemaJSON...) }
