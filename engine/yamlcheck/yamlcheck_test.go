package yamlcheck

import "testing"

func TestProblemFormat(t *testing.T) {
	tests := []struct {
		name string
		p    Problem
		want string
	}{
		{"full", Problem{File: "backup.yaml", Line: 12, Column: 5, Path: "tasks[3].depends_on[0]", Msg: `unknown task "bakup"`, Suggest: "backup"},
			`backup.yaml:12:5: tasks[3].depends_on[0]: unknown task "bakup" (did you mean "backup"?)`},
		{"hint", Problem{File: "a.yaml", Line: 1, Column: 7, Path: "name", Msg: "bad", Hint: "fix it"}, "a.yaml:1:7: name: bad (hint: fix it)"},
		{"no column", Problem{File: "a.yaml", Line: 3, Msg: "yaml syntax error: x"}, "a.yaml:3: yaml: syntax error: x"[:0] + "a.yaml:3: yaml syntax error: x"},
		{"no position", Problem{File: "dir", Msg: "no workflow files"}, "dir: no workflow files"},
		{"no file", Problem{Line: 2, Column: 1, Path: "tasks", Msg: "no tasks"}, "line 2:1: tasks: no tasks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
	ps := Problems{tests[0].p, tests[1].p}
	if got, want := ps.Error(), tests[0].want+"\n"+tests[1].want; got != want {
		t.Errorf("Problems.Error() = %q, want %q", got, want)
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"name", "description", "schedule", "timezone", "overlap", "catchup", "env", "config", "tasks"}
	tests := []struct {
		word  string
		cands []string
		want  string
	}{
		{"bakup", []string{"backup", "upload"}, "backup"},
		{"descripton", keys, "description"},
		{"Name", keys, "name"},
		{"frobnicate", keys, ""},
		{"x", []string{"y"}, "y"},
		{"ab", []string{"xyz"}, ""},
		{"", []string{"a"}, ""},
	}
	for _, tt := range tests {
		if got := Suggest(tt.word, tt.cands); got != tt.want {
			t.Errorf("Suggest(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}
