package secret

import (
	"errors"
	"fmt"
	"github.com/picoflow/picoflow/engine/yamlcheck"
	"github.com/picoflow/picoflow/executors"
	"io"
	"os"
	"sort"
	"strings"
)

// MaxFileSize bounds a secret file.
const MaxFileSize = 64 << 10

// Source says where the value of one named secret comes from: exactly one
// of Env (a variable of PicoFlow's own environment) or File (a path).
type Source struct {
	Env  string
	File string
}

func (s Source) String() string {
	switch {
	case s.Env != "" && s.File == "":
		return "env " + s.Env
	case s.File != "" && s.Env == "":
		return "file " + s.File
	}
	return "invalid source (set exactly one of env or file)"
}

// Store resolves references against a set of named sources and remembers
// each secret value it resolved in its Redactor. It is safe for concurrent
// use.
type Store struct {
	sources map[string]Source
	lookup  func(string) (string, bool)
	red     Redactor
}

// New returns a Store over sources (by secret name; nil for none). lookup
// reads PicoFlow's environment for ${env:VAR} and env sources; nil means
// os.LookupEnv.
func New(sources map[string]Source, lookup func(string) (string, bool)) *Store {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return &Store{sources: sources, lookup: lookup}
}

// MaskAll reads every configured secret and adds its value to the
// Redactor, so that a value is masked from the start, whether or not a task
// references it (a task may print its whole environment, or cat a file).
// A secret that cannot be read now is skipped: a task that references it
// fails with the reason when it runs, and its value is masked once read.
func (s *Store) MaskAll() {
	for _, src := range s.sources {
		if v, err := src.read(s.lookup); err == nil {
			s.red.Add(v)
		}
	}
}

// TaskEnv returns environ (KEY=VALUE entries, PicoFlow's own environment)
// without the variables that back an env secret: tasks inherit it, and a
// task that prints its environment, or runs as another user, must not get
// a secret it did not ask for. A task that needs one names it in its env
// (TOKEN: ${secret:token}), which is added after this base.
func (s *Store) TaskEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !s.backs(k) {
			out = append(out, kv)
		}
	}
	return out
}

// backs reports whether the environment variable k is the source of a
// secret.
func (s *Store) backs(k string) bool {
	for _, src := range s.sources {
		if src.Env == k && src.File == "" {
			return true
		}
	}
	return false
}

// Redactor returns the Redactor that knows every value the Store resolved.
func (s *Store) Redactor() *Redactor { return &s.red }

// Redact replaces every secret value resolved so far with "***". It is
// meant for engine.Options.Redact.
func (s *Store) Redact(str string) string { return s.red.Redact(str) }

// Expand returns str with its ${secret:NAME} and ${env:VAR} references
// replaced by their values. Errors name the reference, never a value.
func (s *Store) Expand(str string) (string, error) {
	if !strings.Contains(str, "${") {
		return str, nil
	}
	refs, err := executors.ScanRefs(str)
	if err != nil {
		return "", err
	}
	if len(refs) == 0 {
		return str, nil
	}
	var b strings.Builder
	last := 0
	for _, r := range refs {
		b.WriteString(str[last:r.Start])
		var v string
		switch r.Kind {
		case executors.RefSecret:
			v, err = s.Secret(r.Name)
		case executors.RefEnv:
			v, err = s.env(r.Name)
		default:
			err = fmt.Errorf("unknown reference kind %q", r.Kind)
		}
		if err != nil {
			return "", err
		}
		b.WriteString(v)
		last = r.End
	}
	b.WriteString(str[last:])
	return b.String(), nil
}

func (s *Store) env(name string) (string, error) {
	v, ok := s.lookup(name)
	if !ok {
		return "", fmt.Errorf("${env:%s}: environment variable %s is not set", name, name)
	}
	return v, nil
}

// Secret reads the current value of the named secret and adds it to the
// Redactor before returning it.
func (s *Store) Secret(name string) (string, error) {
	src, ok := s.sources[name]
	if !ok {
		return "", fmt.Errorf("${secret:%s}: unknown secret %q%s", name, name, suggest(name, s.sources))
	}
	v, err := src.read(s.lookup)
	if err != nil {
		return "", fmt.Errorf("secret %s (%s): %w", name, src, err)
	}
	if v == "" {
		return "", fmt.Errorf("secret %s (%s) is empty", name, src)
	}
	s.red.Add(v)
	return v, nil
}

func (src Source) read(lookup func(string) (string, bool)) (string, error) {
	switch {
	case src.Env != "" && src.File == "":
		v, ok := lookup(src.Env)
		if !ok {
			return "", errors.New("the environment variable is not set")
		}
		return v, nil
	case src.File != "" && src.Env == "":
		return readFile(src.File)
	}
	return "", errors.New("set exactly one of env or file")
}

// readFile reads a secret file after checking, on the open file, that it
// is a regular file others can neither read nor write and its group cannot
// write. One trailing newline is dropped, as editors and echo add it.
func readFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	mode := fi.Mode()
	switch {
	case !mode.IsRegular():
		return "", fmt.Errorf("%s is not a regular file (%s)", path, mode.Type())
	case mode.Perm()&0o007 != 0:
		return "", fmt.Errorf("%s is accessible by every user (mode %04o): chmod 600 %s", path, mode.Perm(), path)
	case mode.Perm()&0o020 != 0:
		return "", fmt.Errorf("%s is writable by its group (mode %04o): chmod g-w %s", path, mode.Perm(), path)
	case fi.Size() > MaxFileSize:
		return "", fmt.Errorf("%s is larger than %d KiB", path, MaxFileSize>>10)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return "", err
	}
	if len(b) > MaxFileSize {
		return "", fmt.Errorf("%s is larger than %d KiB", path, MaxFileSize>>10)
	}
	v := strings.TrimSuffix(string(b), "\n")
	return strings.TrimSuffix(v, "\r"), nil
}

// Check reports every name in refs that has no source in known, all at
// once, with the closest known name as a suggestion. It is the validation
// the cli runs on Workflow.SecretRefs before a run starts.
func Check(refs []string, known map[string]Source) error {
	var errs []error
	for _, name := range refs {
		if _, ok := known[name]; !ok {
			errs = append(errs, fmt.Errorf("unknown secret %q%s (declare it under secrets: in the global config)", name, suggest(name, known)))
		}
	}
	return errors.Join(errs...)
}

// suggest returns ` (did you mean "x"?)` for the known name closest to
// name, or "".
func suggest(name string, known map[string]Source) string {
	names := make([]string, 0, len(known))
	for k := range known {
		names = append(names, k)
	}
	sort.Strings(names)
	best := yamlcheck.Suggest(name, names)
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}
