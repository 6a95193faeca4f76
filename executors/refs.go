package executors

import (
	"fmt"
	"strings"
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
		case kind == RefEnv && !ValidEnvName(name):
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

// ValidEnvName reports whether s is a valid environment variable name:
// [A-Za-z_][A-Za-z0-9_]*. It is the one check of PicoFlow for the names of
// env keys, ${env:VAR} references, outputs and run parameters.
func ValidEnvName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
