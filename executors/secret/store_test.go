package secret

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func secretFile(t *testing.T, data string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // not subject to the umask
		t.Fatal(err)
	}
	return p
}

func TestExpand(t *testing.T) {
	dir := t.TempDir()
	s := New(map[string]Source{
		"db":       {File: secretFile(t, "s3cr3t-file\n", 0o600)},
		"crlf":     {File: secretFile(t, "windows\r\n", 0o640)},
		"token":    {Env: "TOKEN_VAR"},
		"unset":    {Env: "NOT_SET"},
		"empty":    {Env: "EMPTY_VAR"},
		"world":    {File: secretFile(t, "leaky", 0o644)},
		"groupw":   {File: secretFile(t, "leaky", 0o660)},
		"dir":      {File: dir},
		"both":     {Env: "TOKEN_VAR", File: "/x"},
		"missing":  {File: filepath.Join(dir, "nope")},
		"database": {Env: "TOKEN_VAR"},
	}, env(map[string]string{"TOKEN_VAR": "tok-from-env", "EMPTY_VAR": "", "PLAIN": "plain", "BLANK": ""}))

	tests := []struct {
		name, in, want, err string
	}{
		{"no reference", "echo ${HOME} $x", "echo ${HOME} $x", ""},
		{"file", "pw=${secret:db}!", "pw=s3cr3t-file!", ""},
		{"crlf trimmed", "${secret:crlf}", "windows", ""},
		{"env source", "Bearer ${secret:token}", "Bearer tok-from-env", ""},
		{"env reference", "${env:PLAIN}/${env:BLANK}/", "plain//", ""},
		{"several", "${secret:db}:${secret:token}:${env:PLAIN}", "s3cr3t-file:tok-from-env:plain", ""},
		{"unknown secret", "${secret:dbb}", "", `unknown secret "dbb" (did you mean "db"?)`},
		{"unset env source", "${secret:unset}", "", "secret unset (env NOT_SET): the environment variable is not set"},
		{"empty env source", "${secret:empty}", "", "secret empty (env EMPTY_VAR) is empty"},
		{"unset env reference", "${env:NOPE}", "", "environment variable NOPE is not set"},
		{"world readable", "${secret:world}", "", "is accessible by every user (mode 0644): chmod 600"},
		{"group writable", "${secret:groupw}", "", "is writable by its group (mode 0660)"},
		{"not a file", "${secret:dir}", "", "is not a regular file"},
		{"two sources", "${secret:both}", "", "set exactly one of env or file"},
		{"missing file", "${secret:missing}", "", "no such file"},
		{"malformed", "${secret:db", "", "unterminated reference"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Expand(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "leaky") {
					t.Errorf("the value is in the error: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if got := s.Redact("a s3cr3t-file b tok-from-env c windows plain"); got != "a *** b *** c *** plain" {
		t.Errorf("Redact after resolving = %q (env references are not secrets)", got)
	}
	if got := s.Redact("leaky"); got != "leaky" {
		t.Errorf("a refused file's value was registered: %q", got)
	}
}

func TestFileReadEveryTime(t *testing.T) {
	p := secretFile(t, "v1", 0o600)
	s := New(map[string]Source{"k": {File: p}}, nil)
	if v, _ := s.Expand("${secret:k}"); v != "v1" {
		t.Fatalf("got %q", v)
	}
	if err := os.WriteFile(p, []byte("v2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Expand("${secret:k}"); v != "v2" {
		t.Fatalf("rotated: got %q", v)
	}
	if got := s.Redact("v1 v2"); got != "*** ***" {
		t.Errorf("both values stay masked: %q", got)
	}
}

func TestCheck(t *testing.T) {
	known := map[string]Source{"db_password": {Env: "X"}, "hook_token": {File: "/y"}}
	if err := Check([]string{"db_password", "hook_token"}, known); err != nil {
		t.Fatal(err)
	}
	err := Check([]string{"db_pasword", "hook_token", "other"}, known)
	if err == nil {
		t.Fatal("no error")
	}
	want := "unknown secret \"db_pasword\" (did you mean \"db_password\"?) (declare it under secrets: in the global config)\n" +
		"unknown secret \"other\" (declare it under secrets: in the global config)"
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}
}
