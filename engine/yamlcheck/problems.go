package yamlcheck

import (
	"cmp"
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a YAML file (a workflow, the global
// config), located as precisely as
// the YAML allows. Error formats it as
//
//	FILE:LINE:COL: PATH: MSG (did you mean "SUGGEST"?) (hint: HINT)
//
// leaving out the parts that are empty or zero, for example
//
//	backup.yaml:12:5: tasks[3].depends_on[0]: unknown task "bakup" (did you mean "backup"?)
type Problem struct {
	File    string `json:"file"`              // file name as given to Load or Parse
	Line    int    `json:"line"`              // 1-based; 0 when unknown
	Column  int    `json:"column"`            // 1-based; 0 when unknown
	Path    string `json:"path,omitempty"`    // YAML path such as "tasks[3].depends_on[0]"; "" for the whole file
	Msg     string `json:"message"`           // what is wrong, lowercase, no trailing period
	Suggest string `json:"suggest,omitempty"` // a known name close to the wrong one, if any
	Hint    string `json:"hint,omitempty"`    // how to fix it, if the message alone is not enough
	Err     error  `json:"-"`                 // underlying cause, if any (for example an *fs.PathError)
}

// Error implements error.
func (p Problem) Error() string {
	var b strings.Builder
	p.write(&b)
	return b.String()
}

// Unwrap returns the underlying cause, so errors.Is(err, fs.ErrNotExist)
// works through Problems.
func (p Problem) Unwrap() error { return p.Err }

func (p Problem) write(b *strings.Builder) {
	loc := p.File
	if p.Line > 0 {
		if loc == "" {
			loc = "line "
		} else {
			loc += ":"
		}
		loc += strconv.Itoa(p.Line)
		if p.Column > 0 {
			loc += ":" + strconv.Itoa(p.Column)
		}
	}
	if loc != "" {
		b.WriteString(loc)
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	if p.Suggest != "" {
		b.WriteString(` (did you mean "`)
		b.WriteString(p.Suggest)
		b.WriteString(`"?)`)
	}
	if p.Hint != "" {
		b.WriteString(" (hint: ")
		b.WriteString(p.Hint)
		b.WriteString(")")
	}
}

// Problems is every problem found in one or more files, sorted by file
// and position. workflow.Load and config.Parse return a Problems value as
// their error; use errors.As to get at the individual problems.
type Problems []Problem

// Error implements error: one problem per line.
func (ps Problems) Error() string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('\n')
		}
		p.write(&b)
	}
	return b.String()
}

// Unwrap returns the problems as errors, so errors.Is and errors.As see
// each Problem and its cause.
func (ps Problems) Unwrap() []error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errs
}

// SortByPosition orders the problems of one file by line and column,
// keeping the order of discovery for problems at the same place.
func (ps Problems) SortByPosition() {
	sort.SliceStable(ps, func(i, j int) bool {
		return cmp.Or(cmp.Compare(ps[i].Line, ps[j].Line), cmp.Compare(ps[i].Column, ps[j].Column)) < 0
	})
}

// Dedupe drops repeated problems, which arise when a mapping with a
// mistake is merged or aliased into several places.
func (ps Problems) Dedupe() Problems {
	type key struct {
		line, col int
		path, msg string
	}
	seen := make(map[key]bool, len(ps))
	out := ps[:0]
	for _, p := range ps {
		k := key{p.Line, p.Column, p.Path, p.Msg}
		if !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}
