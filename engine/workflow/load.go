package workflow

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/picoflow/picoflow/engine/schedule"
	"github.com/picoflow/picoflow/engine/yamlcheck"

	"go.yaml.in/yaml/v3"
)

// Load reads and parses the workflow file at path. On failure the error is
// a Problems value listing everything wrong with the file.
func Load(path string) (*Workflow, error) {
	return LoadWith(path, BuiltinConfig())
}

// LoadWith is Load with base in place of BuiltinConfig(), as ParseWith.
func LoadWith(path string, base Config) (*Workflow, error) {
	data, err := readCapped(path, base.MaxFileSize)
	if err != nil {
		return nil, Problems{{File: path, Msg: fmt.Sprintf("read workflow: %v", unwrapPath(err)), Err: err}}
	}
	w, err := parse(path, data, base, true)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// errTooLarge is a workflow file over the size limit.
var errTooLarge = errors.New("too large")

// readCapped reads a workflow file of at most limit bytes (0:
// DefaultMaxFileSize), checked before and while reading.
func readCapped(path string, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxFileSize
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tooLarge := func(size int64) error {
		return fmt.Errorf("%w: %d bytes, more than the limit of %d (resources.max_workflow_file in the global config)",
			errTooLarge, size, limit)
	}
	size := int64(512)
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		if fi.Size() > limit {
			return nil, tooLarge(fi.Size())
		}
		size = fi.Size() + 1 // +1: EOF without growing
	}
	data, err := readAll(io.LimitReader(f, limit+1), size)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, tooLarge(int64(len(data)))
	}
	return data, nil
}

// readAll is io.ReadAll into a buffer of size bytes to start with: the
// workflow keeps the bytes as Raw, and io.ReadAll's doubling would leave up
// to as much again unused behind them.
func readAll(r io.Reader, size int64) ([]byte, error) {
	b := make([]byte, 0, size)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// unwrapPath drops the *fs.PathError wrapper, whose path is already in the
// problem's File.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Parse parses and validates a workflow held in data; src names it in
// problems. On failure the error is a Problems value listing everything
// wrong, sorted by line, and the workflow is nil.
func Parse(src string, data []byte) (*Workflow, error) {
	return ParseWith(src, data, BuiltinConfig())
}

// ParseWith is Parse over base instead of BuiltinConfig(): every field of
// the workflow's `config:` block that the file leaves out is base's, and
// so are the retry and timeout of tasks that set neither themselves.
// Precedence is therefore task key > workflow config > base. base must be
// BuiltinConfig() with some fields replaced by valid values (the cli
// replaces those the global config's `defaults:` set); the check that
// backoff max is at least initial is made on the effective values, and its
// message calls a base value that differs from the built-in one a "global
// default".
func ParseWith(src string, data []byte, base Config) (*Workflow, error) {
	return parse(src, data, base, false)
}

// parse is ParseWith; owned says that data is the caller's to give away,
// so the workflow keeps it as Raw instead of a copy.
func parse(src string, data []byte, base Config, owned bool) (*Workflow, error) {
	if !owned {
		data = bytes.Clone(data) // the workflow's strings may point into it (decoder.keep)
	}
	w, probs, ok := decodeSplit(src, data, base)
	if !ok {
		w, probs = decodeWhole(src, data, base)
	}
	if len(probs) > 0 || w == nil {
		probs.SortByPosition()
		return nil, probs.Dedupe()
	}
	w.Source = src
	w.Raw = data
	sum := sha256.Sum256(data)
	w.Hash = hex.EncodeToString(sum[:])
	return w, nil
}

func newDecoder(src string, data []byte, base Config) *decoder {
	return &decoder{Decoder: yamlcheck.NewDecoder(src, data), base: base, src: data}
}

// decodeWhole decodes data from one YAML tree of the whole file (see
// split.go for the other way).
func decodeWhole(src string, data []byte, base Config) (*Workflow, Problems) {
	d := newDecoder(src, data, base)
	d.lines.index(data, 0, len(data), 1)
	root := d.document(data)
	var w *Workflow
	if root != nil {
		w = d.workflow(root)
	}
	return w, d.Probs
}

// document parses data into the top-level mapping, or reports why it
// cannot. Only one YAML document is allowed per file.
func (d *decoder) document(data []byte) (root *yaml.Node) {
	defer func() {
		// The YAML library recovers its own failures; this is the last
		// line of defence for a loader that must never panic on input.
		if r := recover(); r != nil {
			d.Errorf(nil, "", "yaml: internal parser failure: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.Report(nil, "", Problem{Msg: "empty workflow file", Hint: "run `picoflow init` for an example"})
			return nil
		}
		d.Syntax(err, data)
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		d.Report(&next, "", Problem{
			Msg:  "more than one YAML document",
			Hint: "a workflow file holds exactly one workflow; remove the \"---\" separator",
		})
	case !errors.Is(err, io.EOF):
		d.Syntax(err, data)
	}
	root = &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	r := yamlcheck.Resolve(root)
	if r == nil || r.Kind == yaml.ScalarNode && r.ShortTag() == "!!null" {
		d.Report(nil, "", Problem{Msg: "empty workflow file", Hint: "run `picoflow init` for an example"})
		return nil
	}
	if r.Kind != yaml.MappingNode {
		d.Report(root, "", Problem{Msg: "expected a mapping at the top level, got " + yamlcheck.Describe(root), Hint: "a workflow starts with \"name:\""})
		return nil
	}
	return r
}

var workflowKeys = []string{"name", "description", "schedule", "timezone", "overlap", "catchup", "env", "config", "tasks",
	HandlerOnSuccess, HandlerOnFailure, HandlerOnCancel, HandlerOnExit}

// workflow decodes the top-level mapping.
func (d *decoder) workflow(root *yaml.Node) *Workflow {
	w := &Workflow{}
	f, ok := d.Mapping(root, "", workflowKeys, nil)
	if !ok {
		return nil
	}
	if e, ok := d.Require(f, "", "name", "name: nightly-backup"); ok {
		if s, ok := d.Str(e.Val, "name"); ok {
			if len(s) > MaxNameLen {
				d.Report(e.Val, "name", nameTooLong("workflow", s))
			} else if validName(s, false) {
				w.Name, w.nameLine, w.nameCol = s, e.Val.Line, e.Val.Column
			} else {
				d.Report(e.Val, "name", Problem{
					Msg:  fmt.Sprintf("invalid workflow name %q", s),
					Hint: "use lowercase letters, digits, '_' and '-'",
				})
			}
		}
	}
	if e, ok := f.Get("description"); ok {
		w.Description, _ = d.Str(e.Val, "description")
	}
	var tzNode *yaml.Node
	if e, ok := f.Get("timezone"); ok {
		if s, ok := d.Text(e.Val, "timezone"); ok {
			if _, err := time.LoadLocation(s); err != nil {
				d.Report(e.Val, "timezone", Problem{
					Msg:  fmt.Sprintf("unknown time zone %q", s),
					Hint: `use an IANA name such as "Europe/Berlin" or "UTC"`,
					Err:  err,
				})
			} else {
				w.Timezone, tzNode = s, e.Key
			}
		}
	}
	if e, ok := f.Get("schedule"); ok {
		if s, ok := d.Text(e.Val, "schedule"); ok {
			s = strings.TrimSpace(s)
			if cs, err := schedule.Parse(s, nil); err != nil {
				d.Report(e.Val, "schedule", Problem{Msg: err.Error(), Hint: scheduleHint, Err: err})
			} else if cs.Next(time.Now()).IsZero() {
				d.Report(e.Val, "schedule", Problem{
					Msg:  fmt.Sprintf("%q never fires: no date matches its day-of-month and month fields", s),
					Hint: "check the day and month fields: February has no 30th, April no 31st",
				})
			} else {
				w.Schedule = s
				if schedule.HasZone(s) && tzNode != nil {
					d.Report(e.Val, "schedule", Problem{
						Msg:  fmt.Sprintf("schedule has a time zone prefix and timezone is set at line %d", tzNode.Line),
						Hint: "give the time zone once",
					})
				}
			}
		}
	}
	if e, ok := f.Get("overlap"); ok {
		d.overlap(w, e.Val)
	}
	if e, ok := f.Get("catchup"); ok {
		d.catchup(w, e.Val)
	}
	if e, ok := f.Get("env"); ok {
		w.Env, _ = d.env(e.Val, "env")
	}
	w.Config = d.base
	if e, ok := f.Get("config"); ok {
		d.config(&w.Config, e.Val, "config")
	} else {
		d.checkBackoff(w.Config.Backoff, backoffSrc{at: f.Node}, "config.backoff")
	}
	if e, ok := d.Require(f, "", "tasks", `tasks: [{name: hello, type: shell, config: {command: "echo hello"}}]`); ok {
		d.tasks(w, e, f)
	}
	return w
}

var (
	configWorkflowKeys = []string{"max_parallel", "retry_default", "timeout_default", "shutdown_grace", "backoff"}
	backoffKeys        = []string{"initial", "multiplier", "max"}
)

// config decodes the workflow `config:` block over the defaults in c.
func (d *decoder) config(c *Config, n *yaml.Node, path string) {
	f, ok := d.Mapping(n, path, configWorkflowKeys, nil)
	if !ok {
		return
	}
	if e, ok := f.Get("max_parallel"); ok {
		p := yamlcheck.Join(path, "max_parallel")
		if v, ok := d.Integer(e.Val, p); ok {
			if v < 1 {
				d.Report(e.Val, p, Problem{Msg: fmt.Sprintf("must be at least 1, got %d", v), Hint: "leave it out to use the number of CPUs"})
			} else {
				c.MaxParallel = v
			}
		}
	}
	if e, ok := f.Get("retry_default"); ok {
		if v, ok := d.retry(e.Val, yamlcheck.Join(path, "retry_default")); ok {
			c.RetryDefault = int(v)
		}
	}
	if e, ok := f.Get("timeout_default"); ok {
		c.TimeoutDefault, _ = d.timeout(e.Val, yamlcheck.Join(path, "timeout_default"))
	}
	if e, ok := f.Get("shutdown_grace"); ok {
		if v, ok := d.duration(e.Val, yamlcheck.Join(path, "shutdown_grace"), false); ok {
			c.ShutdownGrace = v
		}
	}
	p := yamlcheck.Join(path, "backoff")
	if e, ok := f.Get("backoff"); ok {
		d.backoff(&c.Backoff, e.Val, p)
	} else {
		d.checkBackoff(c.Backoff, backoffSrc{at: f.Node}, p)
	}
}

func (d *decoder) backoff(b *Backoff, n *yaml.Node, path string) {
	f, ok := d.Mapping(n, path, backoffKeys, nil)
	if !ok {
		return
	}
	src := backoffSrc{at: f.Node}
	if e, ok := f.Get("initial"); ok {
		if v, ok := d.duration(e.Val, yamlcheck.Join(path, "initial"), true); ok {
			b.Initial, src.initial = v, e.Val
		} else {
			src.bad = true
		}
	}
	if e, ok := f.Get("multiplier"); ok {
		p := yamlcheck.Join(path, "multiplier")
		if v, ok := d.Number(e.Val, p); ok {
			if v < 1 {
				d.Report(e.Val, p, Problem{Msg: fmt.Sprintf("multiplier must be at least 1, got %v", v), Hint: "1 keeps the delay constant; 2 doubles it on every retry"})
			} else {
				b.Multiplier = v
			}
		}
	}
	if e, ok := f.Get("max"); ok {
		if v, ok := d.duration(e.Val, yamlcheck.Join(path, "max"), true); ok {
			b.Max, src.max = v, e.Val
		} else {
			src.bad = true
		}
	}
	d.checkBackoff(*b, src, path)
}

// backoffSrc says where the effective backoff values came from, for
// checkBackoff.
type backoffSrc struct {
	at           *yaml.Node // the nearest mapping of the file: backoff:, config: or the top level
	initial, max *yaml.Node // the file's values; nil: the base's
	bad          bool       // a value of the file did not parse (already reported)
}

// checkBackoff reports an effective backoff whose max is less than its
// initial delay, at the file's max, else at the nearest mapping the file
// has, naming the value that came from the base as a default (or a global
// default when it is not the built-in one).
func (d *decoder) checkBackoff(b Backoff, src backoffSrc, path string) {
	if src.bad || b.Max >= b.Initial {
		return
	}
	maxWhat, maxGlobal := origin("max", b.Max, DefaultBackoffMax, src.max != nil)
	initWhat, initGlobal := origin("initial", b.Initial, DefaultBackoffInitial, src.initial != nil)
	at := src.at
	if src.max != nil {
		at = src.max
	}
	hint := "max caps the delay and must be at least initial"
	if maxGlobal || initGlobal {
		hint += "; set both in this workflow's config.backoff, or change defaults.backoff in the global config"
	}
	d.Report(at, yamlcheck.Join(path, "max"), Problem{Msg: fmt.Sprintf("%s is less than %s", maxWhat, initWhat), Hint: hint})
}

// origin names a backoff value for checkBackoff: "max 1s" when the file
// set it, "the default max 5m0s" when it is the built-in default, "the
// global default max 1m0s" when the base replaced the built-in one.
func origin(name string, v, builtin time.Duration, inFile bool) (what string, global bool) {
	switch {
	case inFile:
		return name + " " + v.String(), false
	case v == builtin:
		return "the default " + name + " " + v.String(), false
	default:
		return "the global default " + name + " " + v.String(), true
	}
}

// tasks decodes the task list and then checks the graph.
func (d *decoder) tasks(w *Workflow, e yamlcheck.Field, top yamlcheck.Fields) {
	if d.split != nil {
		d.splitTasks(w, e, top)
		return
	}
	r := yamlcheck.Resolve(e.Val)
	if r == nil || r.Kind != yaml.SequenceNode {
		p := Problem{Msg: "expected a list of tasks, got " + yamlcheck.Describe(e.Val)}
		if r != nil && r.Kind == yaml.MappingNode {
			p.Hint = `write each task as a list item starting with "- name:"`
		}
		d.Report(e.Val, "tasks", p)
		return
	}
	if len(r.Content) == 0 {
		d.Report(e.Val, "tasks", Problem{Msg: "no tasks", Hint: "a workflow needs at least one task"})
		return
	}
	tasks := newTasks(w, len(r.Content))
	nodes := make([]taskNode, 0, len(r.Content))
	for i, item := range r.Content {
		if !d.Visit(item) {
			return
		}
		nodes = append(nodes, d.dagTask(w, &tasks[i], item, i))
	}
	d.finishTasks(w, nodes, top)
}

// newTasks makes room for the n tasks of the DAG in w.Tasks, and returns
// them as one block: one allocation instead of n, and no size class
// rounding per task.
func newTasks(w *Workflow, n int) []Task {
	w.Tasks = make([]*Task, 0, n)
	return make([]Task, n)
}

// dagTask decodes the task at index i of `tasks` into t and appends it
// to w.Tasks.
func (d *decoder) dagTask(w *Workflow, t *Task, n *yaml.Node, i int) taskNode {
	tn := d.task(t, n, yamlcheck.Index("tasks", i))
	w.Tasks = append(w.Tasks, t)
	d.checkRootRule(t, &tn, i)
	return tn
}

// finishTasks decodes the run handlers after the tasks, fills in the
// defaults of both and checks the graph.
func (d *decoder) finishTasks(w *Workflow, nodes []taskNode, top yamlcheck.Fields) {
	nodes = append(nodes, d.handlers(w, top)...)
	retry := int32(min(w.Config.RetryDefault, math.MaxInt32)) // a base may be bigger
	for i, t := range w.Tasks {
		if !nodes[i].retrySet {
			t.Retry = retry
		}
		if !nodes[i].timeoutOK {
			t.Timeout = w.Config.TimeoutDefault
		}
	}
	d.graph(w, nodes)
}

// LoadPaths loads every workflow named by paths. A path may be a file, or a
// directory whose *.yaml and *.yml files are loaded in name order (not
// recursively). All problems of all files are collected, including two files
// declaring the same workflow name. The workflows that loaded cleanly are
// returned even when the error is not nil.
func LoadPaths(paths []string) ([]*Workflow, error) {
	return LoadPathsWith(paths, BuiltinConfig())
}

// LoadPathsWith is LoadPaths with base in place of BuiltinConfig(), as
// ParseWith.
func LoadPathsWith(paths []string, base Config) ([]*Workflow, error) {
	var (
		files []string
		probs Problems
		seen  = map[string]bool{}
	)
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			probs = append(probs, Problem{File: p, Msg: fmt.Sprintf("load workflows: %v", unwrapPath(err)), Err: err})
			continue
		}
		if !fi.IsDir() {
			files = appendNew(files, seen, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			probs = append(probs, Problem{File: p, Msg: fmt.Sprintf("read workflow directory: %v", unwrapPath(err)), Err: err})
			continue
		}
		n := len(files)
		for _, de := range ents { // sorted by name
			ext := filepath.Ext(de.Name())
			if de.IsDir() || (ext != ".yaml" && ext != ".yml") {
				continue
			}
			files = appendNew(files, seen, filepath.Join(p, de.Name()))
		}
		if len(files) == n {
			probs = append(probs, Problem{File: p, Msg: "no workflow files (*.yaml, *.yml) in directory"})
		}
	}

	var out []*Workflow
	byName := map[string]*Workflow{}
	order := map[string]int{}
	for i, file := range files {
		order[file] = i
		w, err := LoadWith(file, base)
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) {
				ps = Problems{{File: file, Msg: err.Error(), Err: err}}
			}
			probs = append(probs, ps...)
			continue
		}
		if first, dup := byName[w.Name]; dup {
			probs = append(probs, Problem{
				File: file, Line: w.nameLine, Column: w.nameCol, Path: "name",
				Msg:  fmt.Sprintf("workflow name %q is already declared in %s", w.Name, first.Source),
				Hint: "workflow names must be unique",
			})
			continue
		}
		byName[w.Name] = w
		out = append(out, w)
	}
	if len(probs) == 0 {
		return out, nil
	}
	// Keep files in load order and each file's problems in line order;
	// path-level problems (order -1) come first.
	sort.SliceStable(probs, func(i, j int) bool {
		a, b := &probs[i], &probs[j]
		oa, ok := order[a.File]
		if !ok {
			oa = -1
		}
		ob, ok := order[b.File]
		if !ok {
			ob = -1
		}
		return cmp.Or(cmp.Compare(oa, ob), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column)) < 0
	})
	return out, probs
}

// appendNew appends a file unless the same file (by cleaned path) was
// already named, so "dir dir/a.yaml" loads a.yaml once.
func appendNew(files []string, seen map[string]bool, p string) []string {
	key := filepath.Clean(p)
	if abs, err := filepath.Abs(p); err == nil {
		key = abs
	}
	if seen[key] {
		return files
	}
	seen[key] = true
	return append(files, p)
}
