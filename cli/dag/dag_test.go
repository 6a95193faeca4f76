package dag

import (
	"strings"
	"testing"
)

func TestPlace(t *testing.T) {
	for _, c := range []struct {
		name   string
		deps   [][]int
		layers []int
		rows   []int
	}{
		{"empty", nil, []int{}, []int{}},
		{"one", [][]int{nil}, []int{0}, []int{0}},
		{"chain", [][]int{nil, {0}, {1}}, []int{0, 1, 2}, []int{0, 0, 0}},
		{"diamond", [][]int{nil, {0}, {0}, {1, 2}}, []int{0, 1, 1, 2}, []int{0, 0, 1, 0}},
		{"depth is the longest path", [][]int{nil, {0}, {1}, {0, 2}}, []int{0, 1, 2, 3}, []int{0, 0, 0, 0}},
		// d (row 1 of layer 1) hangs under b, c under a: the barycentre keeps edges uncrossed.
		{"barycentre", [][]int{nil, nil, {1}, {0}}, []int{0, 0, 1, 1}, []int{0, 1, 1, 0}},
		{"cycle goes to layer 0", [][]int{{1}, {0}, nil}, []int{0, 0, 0}, []int{0, 1, 2}},
		{"bad index ignored", [][]int{{7, -1}}, []int{0}, []int{0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			nodes := make([]Node, len(c.deps))
			for i, d := range c.deps {
				nodes[i] = Node{Name: string(rune('a' + i)), Deps: d}
			}
			l := Place(nodes)
			for i := range nodes {
				if l.Layer[i] != c.layers[i] || l.Row[i] != c.rows[i] {
					t.Errorf("node %d: layer %d row %d, want %d %d", i, l.Layer[i], l.Row[i], c.layers[i], c.rows[i])
				}
			}
		})
	}
}

func TestSVG(t *testing.T) {
	nodes := []Node{
		{Name: "fetch", Status: "success", Href: "/runs/1/tasks/fetch/log?attempt=1&x=<y>"},
		{Name: `<script>alert("x")</script>`, Deps: []int{0}, Status: "failed", Tooltip: `exit 1 & "quoted"`},
		{Name: "a-very-long-task-name-that-does-not-fit", Deps: []int{0, 1}},
	}
	var b strings.Builder
	if err := SVG(&b, nodes, Options{Standalone: true, ID: "g"}); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	for _, want := range []string{
		`xmlns="http://www.w3.org/2000/svg"`, `id="g"`,
		`data-task="fetch" data-status="success"`, `fill="` + Colors["success"] + `"`,
		`data-status="failed"`, `fill="` + Colors["failed"] + `"`,
		`data-status="pending"`, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;",
		`<title>exit 1 &amp; &#34;quoted&#34;</title>`, `href="/runs/1/tasks/fetch/log?attempt=1&amp;x=&lt;y&gt;"`,
		"a-very-long-task-name…",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("svg lacks %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, "<script") {
		t.Errorf("unescaped markup:\n%s", s)
	}
	if n := strings.Count(s, `<g class="node"`); n != 3 {
		t.Errorf("%d nodes, want 3", n)
	}
	if n := strings.Count(s, `class="edge"`); n != 3 {
		t.Errorf("%d edges, want 3", n)
	}
}

// FuzzPlace: any dependency lists (cycles, bad indexes) lay out inside
// the drawing, every node in its own cell.
func FuzzPlace(f *testing.F) {
	f.Add([]byte{0, 1, 1, 2, 0, 3})
	f.Add([]byte{1, 0, 0, 1, 9, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		n := len(b)/2 + 1
		nodes := make([]Node, n)
		for i := 0; i+1 < len(b); i += 2 {
			from, to := int(b[i])%(n+2)-1, int(b[i+1])%n
			nodes[to].Deps = append(nodes[to].Deps, from)
		}
		l := Place(nodes)
		cells := map[[2]int]bool{}
		for i := range nodes {
			x, y := l.XY(i)
			if x < 0 || y < 0 || x+NodeW > l.Width || y+NodeH > l.Height {
				t.Fatalf("node %d at %d,%d outside %dx%d", i, x, y, l.Width, l.Height)
			}
			cell := [2]int{l.Layer[i], l.Row[i]}
			if cells[cell] {
				t.Fatalf("two nodes in layer %d row %d", cell[0], cell[1])
			}
			cells[cell] = true
		}
	})
}
