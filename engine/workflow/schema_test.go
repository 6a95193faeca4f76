package workflow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// semanticOnly lists the corpus files that Parse rejects for a reason no
// JSON Schema can express; the schema accepts them. Every other file gets
// the same verdict from the schema and from Parse.
var semanticOnly = map[string]string{
	"testdata/invalid/backoff-default-max.yaml":  "compares two durations (max < initial)",
	"testdata/invalid/bad-cron-double-tz.yaml":   "cron syntax",
	"testdata/invalid/bad-cron-fields.yaml":      "cron syntax",
	"testdata/invalid/bad-cron-tz.yaml":          "time zone names",
	"testdata/invalid/bad-cron.yaml":             "cron syntax",
	"testdata/invalid/bad-refs.yaml":             "${secret:..}/${env:..} syntax inside any string",
	"testdata/invalid/bad-timezone.yaml":         "time zone names",
	"testdata/invalid/cycle-2.yaml":              "dependency cycles",
	"testdata/invalid/cycle-3.yaml":              "dependency cycles",
	"testdata/invalid/duplicate-task-name.yaml":  "unique values of a key across list items",
	"testdata/invalid/multiple-documents.yaml":   "the schema sees one YAML document at a time",
	"testdata/invalid/output-var-clash.yaml":     "names that clash after upper-casing",
	"testdata/invalid/self-dependency.yaml":      "references between tasks",
	"testdata/invalid/schedule-never-fires.yaml": "cron syntax (a day that no month has)",
	"testdata/invalid/unknown-dependency.yaml":   "references between tasks",
}

// schemaCorpus is every workflow the tests know: the decoder's valid and
// invalid cases, the examples/ of the repository and the init example.
func schemaCorpus(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{"init-example": Example()}
	for _, pat := range []string{"testdata/valid/*.y*ml", "testdata/invalid/*.yaml", "../../examples/*.yaml"} {
		names, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				t.Fatal(err)
			}
			files[filepath.ToSlash(n)] = b
		}
	}
	return files
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	if err != nil {
		t.Fatalf("schema.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("workflow.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("workflow.json")
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	return s
}

// yamlToJSON converts a YAML document into the JSON value an editor's
// YAML language server checks against the schema.
func yamlToJSON(data []byte) (any, error) {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	b, err := json.Marshal(jsonable(v))
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = jsonable(e)
		}
		return x
	default:
		return x
	}
}

// TestSchemaAgreesWithValidate is the conformance test of the schema and
// the decoder (STYLE.md habit 12).
func TestSchemaAgreesWithValidate(t *testing.T) {
	s := compileSchema(t)
	corpus := schemaCorpus(t)
	names := make([]string, 0, len(corpus))
	for n := range corpus {
		names = append(names, n)
	}
	sort.Strings(names)
	judged := 0
	for _, n := range names {
		data := corpus[n]
		_, perr := Parse(n, data)
		parseOK := perr == nil
		doc, yerr := yamlToJSON(data)
		if yerr != nil || doc == nil {
			// Not a YAML mapping document at all: the editor's YAML
			// parser reports it, not the schema.
			if parseOK {
				t.Errorf("%s: validate accepts a file that is not YAML: %v", n, yerr)
			}
			continue
		}
		serr := s.Validate(doc)
		schemaOK := serr == nil
		reason, semantic := semanticOnly[n]
		switch {
		case !schemaOK && parseOK:
			t.Errorf("%s: the schema rejects a valid workflow:\n%v", n, serr)
		case schemaOK && !parseOK && !semantic:
			t.Errorf("%s: the schema accepts what validate rejects (add it to semanticOnly only if no schema can express it):\n%v", n, perr)
		case semantic && !(schemaOK && !parseOK):
			t.Errorf("%s: listed in semanticOnly (%s), but schema and validate agree", n, reason)
		default:
			judged++
		}
	}
	if judged < 40 {
		t.Errorf("only %d files judged; is the corpus there?", judged)
	}
	t.Logf("%d files, %d semantic-only", len(names), len(semanticOnly))
}
