package yamlcheck

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// syntaxErr matches the "yaml: line N: msg" errors of the YAML parser.
// Compiled on first use, as unknownAnchor: only a file with a syntax
// error needs them, and compiling both took 0.1 ms of every command's
// start-up.
var syntaxErr = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`) })

// parserProblems are the messages of the YAML library's parser stage. It
// reports their line 0-based (its scanner stage reports lines 1-based), and
// leaves the line out for the first line.
var parserProblems = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %YAML directive",
	"found duplicate %TAG directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// unknownAnchor matches the one parser error that carries no line.
var unknownAnchor = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^unknown anchor '(.*)' referenced$`) })

// Syntax turns a YAML parser error into problems, one per line of the
// message, at the line the parser gave, made 1-based.
func (d *Decoder) Syntax(err error, data []byte) {
	for _, msg := range strings.Split(err.Error(), "\n") {
		msg = strings.TrimSpace(msg)
		if msg == "" {
			continue
		}
		p := Problem{File: d.File, Msg: "yaml syntax error: " + msg, Err: err}
		if m := syntaxErr().FindStringSubmatch(msg); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Msg = "yaml syntax error: " + m[2]
			if IsKnown(m[2], parserProblems) {
				p.Line++
			}
			if a := unknownAnchor().FindStringSubmatch(m[2]); a != nil && p.Line == 0 {
				if i := bytes.Index(data, []byte("*"+a[1])); i >= 0 {
					p.Line = 1 + bytes.Count(data[:i], []byte("\n"))
				}
			}
		}
		if p.Line > 0 && hasTabIndent(data, p.Line) {
			p.Hint = "indent with spaces; YAML does not allow tabs"
		}
		d.Probs = append(d.Probs, p)
	}
}

// hasTabIndent reports whether the 1-based line of data is indented with a
// tab.
func hasTabIndent(data []byte, line int) bool {
	for i := 1; i < line; i++ {
		j := bytes.IndexByte(data, '\n')
		if j < 0 {
			return false
		}
		data = data[j+1:]
	}
	indent := data[:len(data)-len(bytes.TrimLeft(data, " \t"))]
	return bytes.IndexByte(indent, '\t') >= 0
}
