package dag

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
)

// The text formats draw the same Nodes as SVG, for other tools to lay
// out: DOT for Graphviz (dot -Tsvg), Mermaid for Markdown that renders it
// (GitHub, GitLab, many wikis). A node shows its name and Kind, and is
// filled with its Status's colour when it has one; every edge points from
// a dependency to its dependent, left to right as SVG draws them.

// DOT writes the graph in the Graphviz language, named name.
func DOT(w io.Writer, name string, nodes []Node) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "digraph %s {\n", dotID(name))
	b.WriteString("  rankdir=LR;\n")
	b.WriteString(`  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="sans-serif", fontsize=12];` + "\n")
	b.WriteString(`  edge [color="#8a94a0"];` + "\n")
	for _, nd := range nodes {
		label := nd.Name
		if nd.Kind != "" {
			label += "\n" + nd.Kind
		}
		fmt.Fprintf(b, "  %s [label=%s", dotID(nd.Name), dotID(label))
		if nd.Status != "" {
			fmt.Fprintf(b, `, fillcolor="%s", fontcolor="%s"`, Color(nd.Status), textColor(nd.Status))
		}
		if nd.Tooltip != "" {
			fmt.Fprintf(b, ", tooltip=%s", dotID(nd.Tooltip))
		}
		b.WriteString("];\n")
	}
	for _, nd := range nodes {
		for _, d := range nd.Deps {
			if d >= 0 && d < len(nodes) {
				fmt.Fprintf(b, "  %s -> %s;\n", dotID(nodes[d].Name), dotID(nd.Name))
			}
		}
	}
	b.WriteString("}\n")
	return b.Flush()
}

// dotID quotes s as a DOT string: backslashes and quotes escaped, a
// newline as DOT's centred line break.
func dotID(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", "")
	return `"` + r.Replace(s) + `"`
}

// Mermaid writes the graph as a Mermaid flowchart. Nodes are named t0,
// t1, ... (task names may hold characters Mermaid gives a meaning to);
// the labels carry the names, with HTML entities for the characters
// Mermaid would read as syntax.
func Mermaid(w io.Writer, nodes []Node) error {
	b := bufio.NewWriter(w)
	b.WriteString("flowchart LR\n")
	used := map[string]bool{}
	for i, nd := range nodes {
		label := mermaidText(nd.Name)
		if nd.Kind != "" {
			label += "<br/><small>" + mermaidText(nd.Kind) + "</small>"
		}
		fmt.Fprintf(b, "  t%d[\"%s\"]\n", i, label)
		if nd.Status != "" {
			used[nd.Status] = true
		}
	}
	for i, nd := range nodes {
		for _, d := range nd.Deps {
			if d >= 0 && d < len(nodes) {
				fmt.Fprintf(b, "  t%d --> t%d\n", d, i)
			}
		}
	}
	statuses := make([]string, 0, len(used))
	for s := range used {
		statuses = append(statuses, s)
	}
	sort.Strings(statuses)
	for _, s := range statuses {
		fmt.Fprintf(b, "  classDef %s fill:%s,color:%s\n", mermaidClass(s), Color(s), textColor(s))
	}
	for i, nd := range nodes {
		if nd.Status != "" {
			fmt.Fprintf(b, "  class t%d %s\n", i, mermaidClass(nd.Status))
		}
	}
	return b.Flush()
}

// mermaidText escapes what a quoted Mermaid label must not contain.
func mermaidText(s string) string {
	r := strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;", "#", "#35;", "&", "#amp;", "\n", " ")
	return r.Replace(s)
}

// mermaidClass is the class of a status ("st_" + the status: a status is
// a lower-case word, and the prefix keeps it from being a keyword).
func mermaidClass(status string) string {
	out := []byte("st_")
	for _, c := range []byte(status) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' {
			out = append(out, c)
		}
	}
	return string(out)
}
