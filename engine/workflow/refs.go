package workflow

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Reference kinds that may appear in config strings, headers and env
// values. They are left in place by Load and resolved at run time.
const (
	RefSecret = "secret" // ${secret:NAME}: a value from the secret store
	RefEnv    = "env"    // ${env:VAR}: a variable of the daemon's environment
)

// Ref is one ${kind:name} reference inside a string.
type Ref struct {
	Kind  string // RefSecret or RefEnv
	Name  string
	Start int // byte offsets of "${" and one past "}" in the string
	End   int
}

// ScanRefs returns the ${secret:NAME} and ${env:VAR} references in s in
// order. Other ${...} forms, such as shell parameter expansions, are not
// references and are skipped. err reports the first malformed reference
// (unterminated, or with an empty or invalid name); the well-formed ones
// before it are still returned.
func ScanRefs(s string) (refs []Ref, err error) {
	for i := 0; ; {
		j := strings.Index(s[i:], "${")
		if j < 0 {
			return refs, nil
		}
		start := i + j
		body := s[start+2:]
		var kind string
		switch {
		case strings.HasPrefix(body, RefSecret+":"):
			kind = RefSecret
		case strings.HasPrefix(body, RefEnv+":"):
			kind = RefEnv
		default:
			i = start + 2
			continue
		}
		end := strings.IndexByte(body, '}')
		if end < 0 {
			return refs, fmt.Errorf("unterminated reference %q", clip(s[start:]))
		}
		name := body[len(kind)+1 : end]
		switch {
		case name == "":
			return refs, fmt.Errorf("reference %q has an empty name", s[start:start+2+end+1])
		case kind == RefEnv && !validEnvName(name):
			return refs, fmt.Errorf("reference %q: invalid environment variable name", s[start:start+2+end+1])
		case kind == RefSecret && strings.ContainsAny(name, " \t\r\n${"):
			return refs, fmt.Errorf("reference %q: invalid secret name", s[start:start+2+end+1])
		}
		refs = append(refs, Ref{Kind: kind, Name: name, Start: start, End: start + 2 + end + 1})
		i = start + 2 + end + 1
	}
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

// refs checks the references in a config string; it is the value checker
// for every string that is resolved at run time.
func (d *decoder) refs(n *yaml.Node, path, s string) bool {
	if !strings.Contains(s, "${") {
		return true
	}
	if _, err := ScanRefs(s); err != nil {
		d.report(n, path, Problem{Msg: err.Error(), Hint: "write ${secret:NAME} or ${env:VAR}"})
		return false
	}
	return true
}

// hasRef reports whether s holds a reference, in which case its final
// value, and so its shape, is only known at run time.
func hasRef(s string) bool {
	refs, _ := ScanRefs(s)
	return len(refs) > 0
}

// SecretRefs returns the names of the secrets the task references in its
// config, headers, JSON body and env, sorted and without duplicates.
func (t *Task) SecretRefs() []string {
	var names []string
	t.strings(func(s string) {
		refs, _ := ScanRefs(s)
		for _, r := range refs {
			if r.Kind == RefSecret {
				names = append(names, r.Name)
			}
		}
	})
	slices.Sort(names)
	return slices.Compact(names)
}

// SecretRefs returns the names of the secrets referenced by the workflow's
// env and by any of its tasks, sorted and without duplicates.
func (w *Workflow) SecretRefs() []string {
	var names []string
	for _, v := range w.Env {
		refs, _ := ScanRefs(v)
		for _, r := range refs {
			if r.Kind == RefSecret {
				names = append(names, r.Name)
			}
		}
	}
	for _, t := range w.Tasks {
		names = append(names, t.SecretRefs()...)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// strings calls fn with every string of the task that is resolved at run
// time.
func (t *Task) strings(fn func(string)) {
	for _, v := range t.Env {
		fn(v)
	}
	if c := t.Shell; c != nil {
		fn(c.Command)
		fn(c.Workdir)
	}
	if c := t.SSH; c != nil {
		for _, s := range []string{c.Host, c.User, c.Command, c.IdentityFile, c.Passphrase, c.KnownHosts} {
			fn(s)
		}
	}
	if c := t.HTTP; c != nil {
		fn(c.URL)
		fn(c.Body)
		fn(c.CAFile)
		for k, v := range c.Headers {
			fn(k)
			fn(v)
		}
		walkStrings(c.JSON, fn)
	}
}

// walkStrings calls fn with every string in a decoded JSON value, keys
// included.
func walkStrings(v any, fn func(string)) {
	switch v := v.(type) {
	case string:
		fn(v)
	case []any:
		for _, e := range v {
			walkStrings(e, fn)
		}
	case map[string]any:
		for k, e := range v {
			fn(k)
			walkStrings(e, fn)
		}
	}
}
