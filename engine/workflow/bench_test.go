package workflow

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// genDAG returns a workflow of n shell tasks, each depending on up to two
// earlier tasks, written the way people write them.
func genDAG(n int) []byte {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	var b strings.Builder
	b.WriteString("name: bench\nschedule: \"0 2 * * *\"\nconfig:\n  retry_default: 1\n  timeout_default: 5m\ntasks:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: task-%d\n    type: shell\n", i)
		if i > 0 {
			a, c := r.IntN(i), r.IntN(i)
			if a == c {
				fmt.Fprintf(&b, "    depends_on: [task-%d]\n", a)
			} else {
				fmt.Fprintf(&b, "    depends_on: [task-%d, task-%d]\n", a, c)
			}
		}
		fmt.Fprintf(&b, "    env: {STEP: \"%d\"}\n    config:\n      command: \"echo step %d > /tmp/out-%d\"\n", i, i, i)
	}
	return []byte(b.String())
}

func benchmarkParse(b *testing.B, n int) {
	data := genDAG(n)
	if _, err := Parse("bench.yaml", data); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("bench.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse100(b *testing.B)   { benchmarkParse(b, 100) }
func BenchmarkParse1000(b *testing.B)  { benchmarkParse(b, 1000) }
func BenchmarkParse10000(b *testing.B) { benchmarkParse(b, 10000) }

// BenchmarkParseManyUnknown10000 is the worst case of the suggestions: every
// dependency is unknown, so each is compared with every task name.
func BenchmarkParseManyUnknown10000(b *testing.B) {
	data := []byte(strings.ReplaceAll(string(genDAG(10000)), "depends_on: [task-", "depends_on: [tsak-"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("bench.yaml", data); err == nil {
			b.Fatal("want problems")
		}
	}
}

func TestGeneratedDAG(t *testing.T) {
	w, err := Parse("bench.yaml", genDAG(500))
	if err != nil {
		t.Fatal(err)
	}
	checkGraph(t, w)
}
