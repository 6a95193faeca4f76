package workflow

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	def := Backoff{Initial: DefaultBackoffInitial, Multiplier: DefaultBackoffMultiplier, Max: DefaultBackoffMax}
	tests := []struct {
		name string
		b    Backoff
		n    int
		want time.Duration
	}{
		{"first retry", def, 1, time.Second},
		{"second retry doubles", def, 2, 2 * time.Second},
		{"fifth retry", def, 5, 16 * time.Second},
		{"capped at max", def, 10, 5 * time.Minute},
		{"huge n stays capped", def, 1 << 30, 5 * time.Minute},
		{"n below one is the first retry", def, 0, time.Second},
		{"constant", Backoff{Initial: 3 * time.Second, Multiplier: 1, Max: time.Minute}, 7, 3 * time.Second},
		{"fractional multiplier", Backoff{Initial: time.Second, Multiplier: 1.5, Max: time.Minute}, 3, 2250 * time.Millisecond},
		{"initial above max", Backoff{Initial: time.Hour, Multiplier: 2, Max: time.Minute}, 1, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.Delay(tt.n); got != tt.want {
				t.Errorf("Delay(%d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}

// dag builds a workflow source with the given "name: dep dep" lines.
func dag(lines ...string) string {
	var b strings.Builder
	b.WriteString("name: dag\ntasks:\n")
	for _, l := range lines {
		name, deps, _ := strings.Cut(l, ":")
		fmt.Fprintf(&b, "  - name: %s\n    type: shell\n    config: {command: \"echo %s\"}\n", name, name)
		if deps = strings.TrimSpace(deps); deps != "" {
			fmt.Fprintf(&b, "    depends_on: [%s]\n", strings.Join(strings.Fields(deps), ", "))
		}
	}
	return b.String()
}

func TestGraph(t *testing.T) {
	tests := []struct {
		name       string
		src        string
		order      []int
		deps       [][]int32
		downstream [][]int32
	}{
		{"single", dag("a"), []int{0}, [][]int32{nil}, [][]int32{nil}},
		{"independent keep file order", dag("a", "b", "c"), []int{0, 1, 2}, [][]int32{nil, nil, nil}, [][]int32{nil, nil, nil}},
		{"chain declared backwards", dag("c: b", "b: a", "a"), []int{2, 1, 0}, [][]int32{{1}, {2}, nil}, [][]int32{nil, {0}, {1}}},
		{"diamond", dag("top", "left: top", "right: top", "bottom: right left"), []int{0, 1, 2, 3},
			[][]int32{nil, {0}, {0}, {2, 1}}, [][]int32{{1, 2}, {3}, {3}, nil}},
		{"fan in before fan out", dag("x: a b", "a", "b", "y: x"), []int{1, 2, 0, 3},
			[][]int32{{1, 2}, nil, nil, {0}}, [][]int32{{3}, {0}, {0}, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := Parse(tt.name, []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if got := w.TopoOrder(); !slices.Equal(got, tt.order) {
				t.Errorf("TopoOrder = %v, want %v", got, tt.order)
			}
			for i, task := range w.Tasks {
				if !slices.Equal(w.Deps(i), tt.deps[i]) {
					t.Errorf("%s deps = %v, want %v", task.Name, w.Deps(i), tt.deps[i])
				}
				if !slices.Equal(w.Downstream(i), tt.downstream[i]) {
					t.Errorf("%s downstream = %v, want %v", task.Name, w.Downstream(i), tt.downstream[i])
				}
			}
			checkGraph(t, w)
			order := w.TopoOrder()
			order[0] = -1
			if w.TopoOrder()[0] == -1 {
				t.Error("TopoOrder returned the internal slice")
			}
		})
	}
}

func TestCycles(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"two", dag("a: b", "b: a"), []string{"a -> b -> a"}},
		{"three reported once", dag("a: c", "b: a", "c: b"), []string{"a -> c -> b -> a"}},
		{"starts at first task in file", dag("z", "m: n", "n: o", "o: m"), []string{"m -> n -> o -> m"}},
		{"shortest through first", dag("a: b c", "b: c", "c: a"), []string{"a -> c -> a"}},
		{"separate cycles", dag("a: b", "b: a", "c: d", "d: c", "e: a c"), []string{"a -> b -> a", "c -> d -> c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("dag.yaml", []byte(tt.src))
			var ps Problems
			if !asProblems(err, &ps) {
				t.Fatalf("err = %v, want problems", err)
			}
			var got []string
			for _, p := range ps {
				got = append(got, strings.TrimPrefix(p.Msg, "dependency cycle: "))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("cycles = %q, want %q", got, tt.want)
			}
		})
	}
}

func asProblems(err error, ps *Problems) bool {
	p, ok := err.(Problems)
	*ps = p
	return ok
}

func TestOutputVar(t *testing.T) {
	tests := []struct{ task, key, want string }{
		{"make-archive", "FILE", "PICOFLOW_OUT_MAKE_ARCHIVE_FILE"},
		{"db_dump", "path", "PICOFLOW_OUT_DB_DUMP_PATH"},
		{"Step.2", "x-y", "PICOFLOW_OUT_STEP_2_X_Y"},
	}
	for _, tt := range tests {
		if got := OutputVar(tt.task, tt.key); got != tt.want {
			t.Errorf("OutputVar(%q, %q) = %q, want %q", tt.task, tt.key, got, tt.want)
		}
	}
}
