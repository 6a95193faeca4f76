package workflow

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/picoflow/picoflow/engine/yamlcheck"
)

// suggestBudget caps the name comparisons spent on "did you mean" for
// unknown dependencies: plenty for any hand-written file, and it keeps a
// huge generated file full of unknown names from taking quadratic time.
const suggestBudget = 1_000_000

// graph indexes the tasks by name, resolves depends_on into Deps and
// Downstream, and reports duplicate names, unknown, self and repeated
// dependencies, and cycles. It runs even when some tasks are broken, so a
// file with many problems shows them all.
func (d *decoder) graph(w *Workflow, nodes []taskNode) {
	w.byName = d.names(w, nodes)
	r := resolver{d: d, w: w, edges: make([]int32, 0, len(d.deps))}
	w.depAt = make([]int32, len(w.Tasks)+1)
	for i := range w.Tasks {
		r.resolve(i, nodes[i])
		w.depAt[i+1] = int32(len(r.edges))
	}
	w.deps = r.edges
	d.deps, d.depNames = nil, nil // resolved: let the GC have them while the rest is built
	w.downstream()

	w.order = w.topoOrder()
	if len(w.order) < len(w.Tasks) {
		d.cycles(w, nodes)
	}
}

// resolver turns the names in depends_on into indexes into Tasks.
type resolver struct {
	d     *decoder
	w     *Workflow
	edges []int32              // every task's Deps, one after the other
	names *yamlcheck.Suggester // built on the first unknown dependency only
}

// find returns the index of the named task.
func (r *resolver) find(name string) (int, bool) {
	w := r.w
	k, ok := slices.BinarySearchFunc(w.byName, name, func(i int32, name string) int {
		return cmpVar(w.Tasks[i].Name, name)
	})
	if !ok {
		return 0, false
	}
	return int(w.byName[k]), true
}

// resolve appends the dependencies of task i to r.edges and reports
// unknown, self and repeated ones.
func (r *resolver) resolve(i int, tn taskNode) {
	d, start := r.d, len(r.edges)
	var seen map[int]bool
	if tn.ndeps > 16 {
		seen = make(map[int]bool, tn.ndeps)
	}
	for _, dp := range d.deps[tn.deps : tn.deps+tn.ndeps] {
		name := d.depName(dp)
		j, ok := r.find(name)
		switch {
		case !ok:
			if r.names == nil {
				list := make([]string, 0, len(r.w.Tasks))
				for _, u := range r.w.Tasks {
					if u.Name != "" {
						list = append(list, u.Name)
					}
				}
				r.names = yamlcheck.NewSuggester(list, suggestBudget)
			}
			d.reportAt(dp.pos, dp.path(tn.path(i)), Problem{Msg: fmt.Sprintf("unknown task %q", name), Suggest: r.names.Suggest(name)})
		case j == i:
			d.errorAt(dp.pos, dp.path(tn.path(i)), "task %q depends on itself", name)
		case seen != nil && seen[j] || seen == nil && slices.Contains(r.edges[start:], int32(j)):
			d.errorAt(dp.pos, dp.path(tn.path(i)), "duplicate dependency %q", name)
		default:
			r.edges = append(r.edges, int32(j))
			if seen != nil {
				seen[j] = true
			}
		}
	}
}

// Deps returns the indexes into Tasks of the tasks that task i depends on,
// in the order of its depends_on. The result shares the workflow's array:
// never modify it.
func (w *Workflow) Deps(i int) []int32 {
	if i+1 >= len(w.depAt) {
		return nil // a Workflow that Load did not make
	}
	from, to := w.depAt[i], w.depAt[i+1]
	return w.deps[from:to:to]
}

// downstream indexes Deps the other way (Downstream).
func (w *Workflow) downstream() {
	at := make([]int32, len(w.Tasks)+1)
	for _, j := range w.deps {
		at[j+1]++
	}
	for i := range w.Tasks {
		at[i+1] += at[i]
	}
	next := slices.Clone(at[:len(w.Tasks)]) // 4 bytes a task, for the time of the loop
	down := make([]int32, len(w.deps))
	for i := range w.Tasks {
		for _, j := range w.Deps(i) {
			down[next[j]] = int32(i)
			next[j]++
		}
	}
	w.down, w.downAt = down, at
}

// Downstream returns the indexes into Tasks of the tasks that depend on
// task i, in file order. The result shares the workflow's array: never
// modify it.
func (w *Workflow) Downstream(i int) []int32 {
	if i+1 >= len(w.downAt) {
		return nil // a Workflow that Load did not make
	}
	from, to := w.downAt[i], w.downAt[i+1]
	return w.down[from:to:to]
}

// names sorts the tasks that have a name by the output variables their
// names give (see cmpVar), file order breaking ties, and reports duplicate
// names and names that give the same variables, each against the first
// task in file order with that name or those variables. The result, 4
// bytes a task, is the name index of Workflow.Index and of graph: the two
// maps it replaces took ten times that.
func (d *decoder) names(w *Workflow, nodes []taskNode) []int32 {
	sorted := make([]int32, 0, len(w.Tasks))
	for i, t := range w.Tasks {
		if t.Name != "" {
			sorted = append(sorted, int32(i))
		}
	}
	name := func(i int32) string { return w.Tasks[i].Name }
	// sort.Slice rather than slices.SortFunc: see ARCHITECTURE.md, "Binary size".
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		return cmp.Or(cmpVar(name(a), name(b)), cmp.Compare(a, b)) < 0
	})
	for g := 0; g < len(sorted); {
		h := g + 1
		for h < len(sorted) && sameVar(name(sorted[g]), name(sorted[h])) {
			h++
		}
		owner := slices.Min(sorted[g:h]) // the first with these variables
		first := sorted[g]               // the first with this name
		for _, i := range sorted[g:h] {
			at, path := nodes[i].name, yamlcheck.Join(nodes[i].path(int(i)), "name")
			switch {
			case name(i) != name(first):
				first = i
				if i == owner {
					continue
				}
			case i == first:
				if i == owner {
					continue
				}
			default:
				d.errorAt(at, path, "duplicate task name %q (first defined at line %d)", name(i), w.Tasks[first].Line)
				continue
			}
			d.reportAt(at, path, Problem{
				Msg: fmt.Sprintf("task names %q and %q (line %d) give the same output variables %s*",
					name(i), name(owner), w.Tasks[owner].Line, OutputVar(name(i), "")),
				Hint: "task names must differ by more than case, '-' and '_'",
			})
		}
		g = h
	}
	return sorted
}

// cmpVar orders task names by envPart, then by name, without building
// envPart's strings. Names are ASCII: others are rejected before.
func cmpVar(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := cmp.Compare(varByte(a[i]), varByte(b[i])); c != 0 {
			return c
		}
	}
	return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b))
}

func sameVar(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if varByte(a[i]) != varByte(b[i]) {
			return false
		}
	}
	return true
}

// varByte is envPart of one byte of a name.
func varByte(c byte) byte {
	switch {
	case c >= 'a' && c <= 'z':
		return c - 'a' + 'A'
	case c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
		return c
	}
	return '_'
}

// topoOrder is Kahn's algorithm: tasks whose dependencies are done, in file
// order. The result is shorter than tasks when there is a cycle.
func (w *Workflow) topoOrder() []int32 {
	tasks := w.Tasks
	pending := make([]int32, len(tasks))
	order := make([]int32, 0, len(tasks))
	for i := range tasks {
		pending[i] = int32(len(w.Deps(i)))
		if pending[i] == 0 {
			order = append(order, int32(i))
		}
	}
	for k := 0; k < len(order); k++ {
		for _, j := range w.Downstream(int(order[k])) {
			if pending[j]--; pending[j] == 0 {
				order = append(order, j)
			}
		}
	}
	return order
}

// cycles reports one cycle per strongly connected component of the tasks
// left over by topoOrder: the shortest cycle through the component's first
// task in file order, at that task's line, each arrow reading "depends on". Fixing it may reveal another
// cycle in the same component; listing every elementary cycle can take
// exponential time.
func (d *decoder) cycles(w *Workflow, nodes []taskNode) {
	done := make([]bool, len(w.Tasks))
	for _, i := range w.order {
		done[i] = true
	}
	for _, scc := range components(w, done) {
		if len(scc) < 2 {
			continue // a task that only depends on a cycle
		}
		start := slices.Min(scc)
		cycle := shortestCycle(w, start, scc)
		names := make([]string, len(cycle)+1)
		for k, i := range cycle {
			names[k] = w.Tasks[i].Name
		}
		names[len(cycle)] = w.Tasks[start].Name
		d.errorAt(nodes[start].at, nodes[start].path(start), "dependency cycle: %s", strings.Join(names, " -> "))
	}
}

// components returns the strongly connected components (Tarjan) of the
// dependency graph restricted to the tasks not marked done.
func components(w *Workflow, done []bool) [][]int {
	tasks := w.Tasks
	const unvisited = -1
	var (
		num     = make([]int, len(tasks))
		low     = make([]int, len(tasks))
		onStack = make([]bool, len(tasks))
		stack   []int
		next    int
		out     [][]int
	)
	for i := range num {
		num[i] = unvisited
	}
	var visit func(v int)
	visit = func(v int) {
		num[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, u32 := range w.Deps(v) {
			u := int(u32)
			switch {
			case done[u]:
			case num[u] == unvisited:
				visit(u)
				low[v] = min(low[v], low[u])
			case onStack[u]:
				low[v] = min(low[v], num[u])
			}
		}
		if low[v] != num[v] {
			return
		}
		var scc []int
		for {
			u := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[u] = false
			scc = append(scc, u)
			if u == v {
				break
			}
		}
		out = append(out, scc)
	}
	for i := range tasks {
		if !done[i] && num[i] == unvisited {
			visit(i)
		}
	}
	return out
}

// shortestCycle returns the tasks of a shortest cycle through start inside
// scc, beginning with start, following Deps edges.
func shortestCycle(w *Workflow, start int, scc []int) []int {
	in := make(map[int]bool, len(scc))
	for _, i := range scc {
		in[i] = true
	}
	prev := map[int]int{start: -1}
	queue := []int{start}
	for k := 0; k < len(queue); k++ {
		v := queue[k]
		for _, u32 := range w.Deps(v) {
			u := int(u32)
			if u == start {
				var path []int
				for x := v; x != -1; x = prev[x] {
					path = append(path, x)
				}
				slices.Reverse(path)
				return path
			}
			if _, seen := prev[u]; !seen && in[u] {
				prev[u] = v
				queue = append(queue, u)
			}
		}
	}
	return []int{start} // unreachable for a real component
}

// TopoOrder returns the indexes of Tasks in an order where every task comes
// after its dependencies; ties keep file order.
func (w *Workflow) TopoOrder() []int {
	order := make([]int, len(w.order))
	for k, i := range w.order {
		order[k] = int(i)
	}
	return order
}
