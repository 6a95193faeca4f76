package workflow

import (
	"slices"
	"time"
	"unsafe"

	"github.com/picoflow/picoflow/engine/schedule"
	"github.com/picoflow/picoflow/executors"
)

// Task types known to the loader. Validation accepts all of them; an
// executor for each is wired in by the cli.
const (
	TypeShell = "shell"
	TypeSSH   = "ssh"
	TypeHTTP  = "http"
)

// Built-in defaults, applied when neither a workflow nor the base it is
// loaded over (see BuiltinConfig, ParseWith) sets the field.
const (
	DefaultBackoffInitial    = time.Second
	DefaultBackoffMultiplier = 2.0
	DefaultBackoffMax        = 5 * time.Minute
	DefaultShutdownGrace     = 30 * time.Second
)

// Workflow is a parsed, validated workflow definition. It is immutable once
// Load returns it; the engine shares it between goroutines.
type Workflow struct {
	Name        string
	Description string
	Schedule    string           // cron expression, "" when unscheduled
	Timezone    string           // IANA zone for Schedule, "" = local
	Overlap     schedule.Overlap // OverlapSkip unless `overlap:` says otherwise
	Catchup     schedule.Catchup
	Env         map[string]string
	Config      Config
	// Tasks are the DAG's tasks in file order, then the run handlers.
	// The DAG's tasks are allocated as one block.
	Tasks []*Task

	// Source is the file the workflow was read from ("" when loaded from bytes).
	Source string
	// Raw is the exact bytes that were parsed; the journal records them so a
	// run can be replayed or resumed against the definition that ran.
	Raw []byte
	// Hash is the lowercase hex SHA-256 of Raw.
	Hash string

	byName   []int32 // indexes of Tasks sorted by cmpVar of their names, for Index
	order    []int32 // a topological order of Tasks, dependencies first
	deps     []int32 // the dependencies of every task (Deps), one after the other
	depAt    []int32 // where those of task i start in deps; len(Tasks)+1 of them
	down     []int32 // the downstream tasks of every task, one after the other
	downAt   []int32 // where those of task i start in down; len(Tasks)+1 of them
	nameLine int     // position of the name, for problems across files
	nameCol  int
}

// Config holds the workflow-level `config:` block with defaults filled in:
// each field is the file's value, else the base's (BuiltinConfig, or the
// one given to ParseWith).
type Config struct {
	MaxParallel    int           // 0 means "number of CPUs", resolved by the engine
	RetryDefault   int           // retries after the first attempt
	TimeoutDefault time.Duration // 0 means no timeout
	Backoff        Backoff
	ShutdownGrace  time.Duration
	// MaxFileSize bounds a workflow file LoadWith reads, in bytes (0:
	// DefaultMaxFileSize). It comes from the global config, never from a
	// workflow file.
	MaxFileSize int64
}

// DefaultMaxFileSize bounds a workflow file when the global config does not
// (resources.max_workflow_file): a file of tens of megabytes would take
// most of a small board's memory to parse.
const DefaultMaxFileSize = 1 << 20

// BuiltinConfig returns the built-in defaults of a workflow's config: the
// base that Parse, Load and LoadPaths decode the `config:` block over.
func BuiltinConfig() Config {
	return Config{
		Backoff:       Backoff{Initial: DefaultBackoffInitial, Multiplier: DefaultBackoffMultiplier, Max: DefaultBackoffMax},
		ShutdownGrace: DefaultShutdownGrace,
	}
}

// Backoff is the exponential backoff between retries:
// wait(n) = min(Initial * Multiplier^(n-1), Max) for the n-th retry.
type Backoff struct {
	Initial    time.Duration
	Multiplier float64
	Max        time.Duration
}

// Delay returns the wait before retry n (n >= 1), without jitter.
func (b Backoff) Delay(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := float64(b.Initial)
	for i := 1; i < n; i++ {
		d *= b.Multiplier
		if d >= float64(b.Max) {
			return b.Max
		}
	}
	if d > float64(b.Max) {
		return b.Max
	}
	return time.Duration(d)
}

// Task is one node of the DAG. A 100,000-task DAG keeps 100,000 of them
// (in one block, see Workflow.Tasks), so its fields are packed: the type,
// trigger rule and handler list are small codes behind Type, Rule and
// Handler, and the names in depends_on are not kept once resolved into
// Workflow.Deps (the name of dependency k of task i is
// Tasks[Deps(i)[k]].Name).
type Task struct {
	// Task is what an executor sees: Name, Env, User and the config of
	// the task's type (Shell, SSH or HTTP, set when Type says so).
	executors.Task

	Timeout           time.Duration // resolved: task `timeout`, else Config.TimeoutDefault; 0 = none
	Retry             int32         // resolved: task `retry`, else Config.RetryDefault
	Line              int32         // line of the task in the source, for messages
	ContinueOnFailure bool
	Idempotent        bool // default true; false makes an interrupted attempt "in doubt" on resume

	kind    uint8 // 1 + index in taskTypes; 0 when the type is missing or unknown
	rule    uint8 // index in TriggerRules: 0 is RuleAllSuccess, the default
	handler uint8 // 1 + index in HandlerLists; 0 for a task of the DAG
}

// Type is the task's type: TypeShell, TypeSSH or TypeHTTP.
func (t *Task) Type() string {
	if t.kind == 0 {
		return ""
	}
	return taskTypes[t.kind-1]
}

// ShortHash is the first 12 hex digits of a definition hash (Hash,
// journal RunStarted.DefHash), as messages and pages show it.
func ShortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// Definition returns Raw as a string without copying it (Raw never changes
// once Parse returns): the journal records it with each run, and a copy
// per run would double what a big definition costs.
func (w *Workflow) Definition() string {
	return unsafe.String(unsafe.SliceData(w.Raw), len(w.Raw))
}

// Index returns the position of the named task in Tasks.
func (w *Workflow) Index(name string) (int, bool) {
	k, ok := slices.BinarySearchFunc(w.byName, name, func(i int32, name string) int {
		return cmpVar(w.Tasks[i].Name, name)
	})
	if !ok {
		return 0, false
	}
	return int(w.byName[k]), true
}
