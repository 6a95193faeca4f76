package workflow

import (
	"github.com/picoflow/picoflow/executors"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// refs checks the references in a config string; it is the value checker
// for every string that is resolved at run time.
func (d *decoder) refs(n *yaml.Node, path, s string) bool {
	if !strings.Contains(s, "${") {
		return true
	}
	if _, err := executors.ScanRefs(s); err != nil {
		d.report(n, path, Problem{Msg: err.Error(), Hint: "write ${secret:NAME} or ${env:VAR}"})
		return false
	}
	return true
}

// hasRef reports whether s holds a reference, in which case its final
// value, and so its shape, is only known at run time.
func hasRef(s string) bool {
	refs, _ := executors.ScanRefs(s)
	return len(refs) > 0
}

// SecretRefs returns the names of the secrets the task references in its
// config, headers, JSON body and env, sorted and without duplicates.
func (t *Task) SecretRefs() []string {
	var names []string
	t.strings(func(s string) {
		refs, _ := executors.ScanRefs(s)
		for _, r := range refs {
			if r.Kind == executors.RefSecret {
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
		refs, _ := executors.ScanRefs(v)
		for _, r := range refs {
			if r.Kind == executors.RefSecret {
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
