package executors

import (
	"fmt"
	"strconv"
	"strings"
)

// PathElem is one step of an OutputPath: a key of a JSON object, or an
// index into a JSON array when IsIndex is set.
type PathElem struct {
	Key     string
	Index   int
	IsIndex bool
}

// OutputPath selects a value inside a JSON document. Its text form, as
// written in an http task's `outputs`, is jq-like: "." is the whole
// document, ".data.items[0].id" a nested value, and `.["odd key"]` a key
// that is not a plain name.
type OutputPath []PathElem

// ParseOutputPath parses the text form of an OutputPath.
func ParseOutputPath(s string) (OutputPath, error) {
	if !strings.HasPrefix(s, ".") {
		return nil, fmt.Errorf("output path %q must start with \".\"", s)
	}
	if s == "." {
		return OutputPath{}, nil
	}
	rest := s
	if strings.HasPrefix(rest, ".[") {
		rest = rest[1:]
	}
	var p OutputPath
	for rest != "" {
		switch rest[0] {
		case '.':
			n := 1
			for n < len(rest) && isKeyByte(rest[n]) {
				n++
			}
			if n == 1 {
				return nil, fmt.Errorf("output path %q: expected a key after \".\" at offset %d", s, len(s)-len(rest))
			}
			p = append(p, PathElem{Key: rest[1:n]})
			rest = rest[n:]
		case '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, fmt.Errorf("output path %q: missing \"]\"", s)
			}
			inner := rest[1:end]
			if strings.HasPrefix(inner, `"`) {
				// A quoted key may itself contain ']'; find the closing quote.
				q, err := strconv.QuotedPrefix(rest[1:])
				if err != nil || !strings.HasPrefix(rest[1+len(q):], "]") {
					return nil, fmt.Errorf("output path %q: bad quoted key at offset %d", s, len(s)-len(rest))
				}
				key, _ := strconv.Unquote(q)
				p = append(p, PathElem{Key: key})
				rest = rest[1+len(q)+1:]
				continue
			}
			i, err := strconv.Atoi(inner)
			if err != nil || i < 0 || inner[0] == '+' {
				return nil, fmt.Errorf("output path %q: index %q must be a non-negative integer", s, inner)
			}
			p = append(p, PathElem{Index: i, IsIndex: true})
			rest = rest[end+1:]
		default:
			return nil, fmt.Errorf("output path %q: unexpected %q at offset %d", s, rest[0], len(s)-len(rest))
		}
	}
	return p, nil
}

func isKeyByte(c byte) bool {
	return c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// String returns the text form of p.
func (p OutputPath) String() string {
	if len(p) == 0 {
		return "."
	}
	var b strings.Builder
	for i, e := range p {
		switch {
		case e.IsIndex:
			if i == 0 {
				b.WriteByte('.')
			}
			fmt.Fprintf(&b, "[%d]", e.Index)
		case e.Key != "" && strings.IndexFunc(e.Key, func(r rune) bool { return r > 127 || !isKeyByte(byte(r)) }) < 0:
			b.WriteString("." + e.Key)
		default:
			if i == 0 {
				b.WriteByte('.')
			}
			b.WriteString("[" + strconv.Quote(e.Key) + "]")
		}
	}
	return b.String()
}

// Lookup returns the value at p in a document decoded by encoding/json into
// an any, and whether it exists.
func (p OutputPath) Lookup(doc any) (any, bool) {
	v := doc
	for _, e := range p {
		if e.IsIndex {
			a, ok := v.([]any)
			if !ok || e.Index >= len(a) {
				return nil, false
			}
			v = a[e.Index]
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[e.Key]; !ok {
			return nil, false
		}
	}
	return v, true
}
