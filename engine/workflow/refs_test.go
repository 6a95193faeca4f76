package workflow

import (
	"github.com/picoflow/picoflow/executors"
	"reflect"
	"slices"
	"testing"
)

func TestScanRefs(t *testing.T) {
	tests := []struct {
		in   string
		want []executors.Ref
		err  bool
	}{
		{in: "plain"},
		{in: "${HOME} ${VAR:-x} $${x}"},
		{in: "a ${secret:db} b", want: []executors.Ref{{Kind: executors.RefSecret, Name: "db", Start: 2, End: 14}}},
		{in: "${env:HOME}/${secret:k.v-1}", want: []executors.Ref{{Kind: executors.RefEnv, Name: "HOME", Start: 0, End: 11}, {Kind: executors.RefSecret, Name: "k.v-1", Start: 12, End: 27}}},
		{in: "${secret:}", err: true},
		{in: "${secret:open", err: true},
		{in: "${env:1X}", err: true},
		{in: "${secret:a b}", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := executors.ScanRefs(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			for _, r := range got {
				if want := "${" + r.Kind + ":" + r.Name + "}"; tt.in[r.Start:r.End] != want {
					t.Errorf("span %q, want %q", tt.in[r.Start:r.End], want)
				}
			}
		})
	}
}

func TestSecretRefs(t *testing.T) {
	tests := []struct {
		name string
		task Task
		want []string
	}{
		{"none", Task{Task: executors.Task{Shell: &executors.ShellConfig{Command: "echo ${HOME}"}}}, nil},
		{"shell and env", Task{Task: executors.Task{
			Env:   executors.Env{{Name: "A", Value: "${secret:b}"}, {Name: "B", Value: "${env:X}"}},
			Shell: &executors.ShellConfig{Command: "x ${secret:a} ${secret:b}", Workdir: "${secret:c}"},
		}}, []string{"a", "b", "c"}},
		{"ssh", Task{Task: executors.Task{SSH: &executors.SSHConfig{Host: "${secret:host}", Passphrase: "${secret:pass}"}}}, []string{"host", "pass"}},
		{"http everywhere", Task{Task: executors.Task{HTTP: &executors.HTTPConfig{
			URL:     "https://x/${secret:path}",
			Headers: map[string]string{"Authorization": "Bearer ${secret:tok}"},
			JSON:    map[string]any{"k": []any{"${secret:deep}", 1.0}, "${secret:key}": nil},
			Body:    "${secret:body}",
			CAFile:  "${secret:ca}",
		}}}, []string{"body", "ca", "deep", "key", "path", "tok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.task.SecretRefs(); !slices.Equal(got, tt.want) {
				t.Errorf("SecretRefs = %v, want %v", got, tt.want)
			}
		})
	}
}
