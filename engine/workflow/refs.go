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
		d.Report(n, path, Problem{Msg: err.Error(), Hint: "write ${secret:NAME} or ${env:VAR}"})
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
	t.MapStrings(func(_, s string) string {
		refs, _ := executors.ScanRefs(s)
		for _, r := range refs {
			if r.Kind == executors.RefSecret {
				names = append(names, r.Name)
			}
		}
		return s
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
