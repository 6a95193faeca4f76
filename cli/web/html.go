package web

import (
	"fmt"
	"io"
	"strings"

	"github.com/picoflow/picoflow/cli/dag"
)

// The pages are written with markup, an escaping writer, rather than
// html/template: text/template calls methods by name through reflect,
// which makes the linker keep every exported method of every type in the
// binary (about 2 MB on armv7, against a budget of 350 KB for the UI).
//
// The rule that keeps it safe: a format string is a constant of this
// package and holds markup only; every argument is escaped (strings with
// html.EscapeString, which covers text and quoted attribute values), except
// a trusted value: markup produced by this package or by package dag, which
// escape what they embed. Hrefs are built from a constant path and
// url.PathEscape / url.QueryEscape of the data, then escaped as attributes.

// trusted is markup that needs no escaping.
type trusted string

// markup is a page being written to w.
type markup struct{ w io.Writer }

// fragment renders fn into a string (small pieces: badges, lists).
func fragment(fn func(m *markup)) trusted {
	var b strings.Builder
	fn(&markup{&b})
	return trusted(b.String())
}

// f writes format with every argument escaped (trusted ones as they are).
func (m *markup) f(format string, args ...any) {
	for i, a := range args {
		switch v := a.(type) {
		case trusted:
			args[i] = string(v)
		case string:
			args[i] = dag.Escape(v)
		case fmt.Stringer:
			args[i] = dag.Escape(v.String())
		case int, int64, uint64, float64, bool:
		default:
			args[i] = dag.Escape(fmt.Sprint(v))
		}
	}
	fmt.Fprintf(m.w, format, args...)
}

// raw writes constant markup.
func (m *markup) raw(s trusted) { io.WriteString(m.w, string(s)) }

// text writes escaped text.
func (m *markup) text(s string) { io.WriteString(m.w, dag.Escape(s)) }

// badge is a status as a coloured label.
func badge(status string) trusted {
	return trusted(fmt.Sprintf(`<span class="badge %s">%s</span>`, statusClass(status), dag.Escape(status)))
}

// top writes the head of every page and its header.
func (m *markup) top(p page) {
	m.f(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%s · PicoFlow</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/style.css">
<script src="/static/ui.js" defer></script>
</head>
<body>
<header class="top">
<a class="brand" href="/">PicoFlow</a>
<nav>
<a href="/"%s>Workflows</a>
<a href="/runs"%s>Runs</a>
</nav>
<span class="ro">read-only</span>
</header>
<main>
`, p.Title, here(p.Nav == "workflows"), here(p.Nav == "runs"))
}

func here(b bool) trusted {
	if b {
		return ` class="here"`
	}
	return ""
}

func (m *markup) bottom() { m.raw("</main>\n</body>\n</html>\n") }
