package dag

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Node is one task of the graph.
type Node struct {
	Name string
	// Kind is the task's type (shell, ssh, http), shown under the name by
	// the text formats.
	Kind string
	Deps []int // indexes into the node slice of the tasks this one waits for
	// Status colours the node (see Colors); "" draws it as pending.
	Status string
	// Tooltip is the node's <title> (shown on hover); "" shows the name.
	Tooltip string
	// Href, when set, makes the node a link.
	Href string
}

// Geometry of a layout, in SVG user units.
const (
	NodeW  = 168 // node box width
	NodeH  = 30  // node box height
	ColGap = 56  // between layers
	RowGap = 12  // between nodes of a layer
	Pad    = 8   // around the drawing
)

// Layout is where each node goes: Layer is its dependency depth (0 for a
// task without dependencies), Row its position within the layer.
type Layout struct {
	Layer, Row    []int
	Layers        int
	MaxRows       int
	Width, Height int
}

// Place lays nodes out: each node one layer right of its deepest
// dependency; within a layer, ordered by the mean row of its dependencies
// (one barycentre pass, which untangles most edges of real workflows) and
// then by input order. Nodes caught in a cycle (an invalid graph) go to
// layer 0. O(nodes + edges) plus a sort per layer.
func Place(nodes []Node) *Layout {
	n := len(nodes)
	l := &Layout{Layer: make([]int, n), Row: make([]int, n)}
	for _, i := range topo(nodes) {
		for _, d := range nodes[i].Deps {
			if d >= 0 && d < n {
				l.Layer[i] = max(l.Layer[i], l.Layer[d]+1)
			}
		}
	}
	for i := range nodes {
		l.Layers = max(l.Layers, l.Layer[i]+1)
	}
	byLayer := make([][]int, l.Layers)
	for i := range nodes {
		byLayer[l.Layer[i]] = append(byLayer[l.Layer[i]], i)
	}
	key := make([]float64, n)
	for _, layer := range byLayer {
		for _, i := range layer {
			sum, cnt := 0.0, 0
			for _, d := range nodes[i].Deps {
				if d >= 0 && d < n && l.Layer[d] < l.Layer[i] {
					sum += float64(l.Row[d])
					cnt++
				}
			}
			key[i] = float64(i) / float64(n+1) // input order breaks ties
			if cnt > 0 {
				key[i] += sum / float64(cnt)
			}
		}
		sort.SliceStable(layer, func(i, j int) bool { return key[layer[i]] < key[layer[j]] })
		for r, i := range layer {
			l.Row[i] = r
		}
		l.MaxRows = max(l.MaxRows, len(layer))
	}
	l.Width = 2*Pad + l.Layers*NodeW + max(l.Layers-1, 0)*ColGap
	l.Height = 2*Pad + l.MaxRows*NodeH + max(l.MaxRows-1, 0)*RowGap
	return l
}

// topo returns the nodes in an order where every node comes after its
// dependencies (Kahn's algorithm), leaving out the nodes on or behind a
// cycle (they stay in layer 0).
func topo(nodes []Node) []int {
	n := len(nodes)
	indeg := make([]int, n)
	down := make([][]int, n)
	for i, nd := range nodes {
		for _, d := range nd.Deps {
			if d >= 0 && d < n {
				indeg[i]++
				down[d] = append(down[d], i)
			}
		}
	}
	order := make([]int, 0, n)
	for i := range nodes {
		if indeg[i] == 0 {
			order = append(order, i)
		}
	}
	for k := 0; k < len(order); k++ {
		for _, j := range down[order[k]] {
			if indeg[j]--; indeg[j] == 0 {
				order = append(order, j)
			}
		}
	}
	return order
}

// XY returns the top left corner of node i's box.
func (l *Layout) XY(i int) (x, y int) {
	return Pad + l.Layer[i]*(NodeW+ColGap), Pad + l.Row[i]*(NodeH+RowGap)
}

// Colors are the fill colours by status; anything else is drawn as pending.
var Colors = map[string]string{
	"pending":     "#c3cad3",
	"running":     "#3b82f6",
	"retrying":    "#f0a020",
	"success":     "#2f9e5b",
	"failed":      "#d64545",
	"timeout":     "#b4307a",
	"skipped":     "#e6e9ed",
	"in_doubt":    "#8e5bd6",
	"interrupted": "#e07b24",
	"canceled":    "#7b8794",
}

// Color returns the fill colour of a status.
func Color(status string) string {
	if c, ok := Colors[status]; ok {
		return c
	}
	return Colors["pending"]
}

// textColor is dark on light fills and white on the others.
func textColor(status string) string {
	switch status {
	case "pending", "skipped", "":
		return "#1f2933"
	}
	return "#ffffff"
}

// Options change how SVG draws.
type Options struct {
	// Standalone writes an XML declaration-free document that stands on
	// its own (the xmlns attribute and a white background), for files.
	Standalone bool
	// ID is the id attribute of the <svg> element; "" sets none.
	ID string
}

// SVG writes the graph of nodes, laid out by Place, as one <svg> element.
// Every name, tooltip and link is escaped.
func SVG(w io.Writer, nodes []Node, opts Options) error {
	l := Place(nodes)
	b := bufio.NewWriterSize(w, 16<<10)
	fmt.Fprintf(b, `<svg class="dag" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="task graph"`,
		l.Width, l.Height, l.Width, l.Height)
	if opts.ID != "" {
		fmt.Fprintf(b, ` id="%s"`, esc(opts.ID))
	}
	if opts.Standalone {
		b.WriteString(` xmlns="http://www.w3.org/2000/svg" font-family="sans-serif"`)
	}
	b.WriteString(">\n")
	if opts.Standalone {
		b.WriteString(`<rect width="100%" height="100%" fill="#ffffff"/>` + "\n")
	}
	b.WriteString(`<defs><marker id="dag-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">` +
		`<path d="M0 0L10 5L0 10z" fill="#8a94a0"/></marker></defs>` + "\n")
	b.WriteString(`<g class="edges" fill="none" stroke="#8a94a0" stroke-width="1.4" marker-end="url(#dag-arrow)">` + "\n")
	for i, nd := range nodes {
		x2, y2 := l.XY(i)
		for _, d := range nd.Deps {
			if d < 0 || d >= len(nodes) {
				continue
			}
			x1, y1 := l.XY(d)
			x1 += NodeW
			y1 += NodeH / 2
			y := y2 + NodeH/2
			mid := (x1 + x2) / 2
			fmt.Fprintf(b, `<path class="edge" d="M%d %d C%d %d %d %d %d %d"/>`+"\n", x1, y1, mid, y1, mid, y, x2-1, y)
		}
	}
	b.WriteString("</g>\n")
	for i, nd := range nodes {
		writeNode(b, l, i, nd)
	}
	b.WriteString("</svg>\n")
	return b.Flush()
}

func writeNode(b *bufio.Writer, l *Layout, i int, nd Node) {
	x, y := l.XY(i)
	status := nd.Status
	if status == "" {
		status = "pending"
	}
	tip := nd.Tooltip
	if tip == "" {
		tip = nd.Name
	}
	fmt.Fprintf(b, `<g class="node" data-task="%s" data-status="%s">`, esc(nd.Name), esc(status))
	fmt.Fprintf(b, `<title>%s</title>`, esc(tip))
	if nd.Href != "" {
		fmt.Fprintf(b, `<a href="%s">`, esc(nd.Href))
	}
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="%s" stroke="#39424e" stroke-opacity="0.35"/>`,
		x, y, NodeW, NodeH, Color(status))
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="13" text-anchor="middle" fill="%s">%s</text>`,
		x+NodeW/2, y+NodeH/2+5, textColor(status), esc(Clip(nd.Name, 22)))
	if nd.Href != "" {
		b.WriteString(`</a>`)
	}
	b.WriteString("</g>\n")
}

// Clip shortens s to n runes, ending it with an ellipsis.
func Clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// Escape is html.EscapeString: the five characters <, >, &, ' and " become
// &lt; &gt; &amp; &#39; &#34;. Importing package html for it would link its
// entity tables (2,231 names, built into maps at start) for nothing: about
// 50 kB on armv7. TestEscapeIsHTMLEscapeString holds it to html's output.
func Escape(s string) string { return escaper.Replace(s) }

var escaper = strings.NewReplacer(
	`&`, "&amp;",
	`'`, "&#39;",
	`<`, "&lt;",
	`>`, "&gt;",
	`"`, "&#34;",
)

func esc(s string) string { return Escape(s) }
