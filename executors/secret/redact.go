package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// Mask replaces every secret value.
const Mask = "***"

// Redactor knows a set of secret values and masks them. The zero value is
// ready; it is safe for concurrent use.
type Redactor struct {
	mu   sync.RWMutex
	vals [][]byte // distinct, never empty
}

// Add registers a secret value and the forms tools commonly print it in,
// where they differ (see Forms), so that a value that went into a URL, a
// JSON document or a shell command line is masked too. Empty values are
// ignored.
func (r *Redactor) Add(v string) {
	if v == "" {
		return
	}
	forms := Forms(v)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range forms {
		if !slices.ContainsFunc(r.vals, func(b []byte) bool { return string(b) == f }) {
			r.vals = append(r.vals, []byte(f))
		}
	}
}

// Forms returns v and the escaped forms of v that programs commonly print:
// URL query and path escaping; the inside of a JSON string as Go writes it
// (HTML characters escaped, json.Marshal), as most other tools write it
// (not escaped: python, jq, Encoder.SetEscapeHTML(false)) and as Python's
// json.dumps writes it by default (non-ASCII escaped); and the inside of a
// shell single-quoted word, with a quote written '\” (sh, bash's set -x)
// or '"'"' (Python's shlex.quote). Duplicates are removed.
func Forms(v string) []string {
	forms := []string{v, url.QueryEscape(v), url.PathEscape(v)}
	if b, err := json.Marshal(v); err == nil {
		forms = append(forms, string(b[1:len(b)-1]))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) == nil {
		b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		forms = append(forms, string(b[1:len(b)-1]))
		forms = append(forms, asciiJSON(string(b[1:len(b)-1])))
	}
	forms = append(forms, strings.ReplaceAll(v, "'", `'\''`), strings.ReplaceAll(v, "'", `'"'"'`))
	out := forms[:0]
	for _, f := range forms {
		if f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// asciiJSON escapes the non-ASCII runes of the inside of a JSON string as
// \uXXXX (surrogate pairs beyond the BMP), as Python's json.dumps does.
func asciiJSON(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case r > 0xFFFF:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, "\\u%04x\\u%04x", r1, r2)
		default:
			fmt.Fprintf(&b, "\\u%04x", r)
		}
	}
	return b.String()
}

// Len is the number of values (forms included) the Redactor masks.
func (r *Redactor) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.vals)
}

func (r *Redactor) snapshot() [][]byte {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.vals[:len(r.vals):len(r.vals)]
}

// Redact returns s with every run of bytes covered by an occurrence of a
// secret value (occurrences may overlap) replaced by Mask.
func (r *Redactor) Redact(s string) string {
	vals := r.snapshot()
	if len(vals) == 0 || s == "" {
		return s
	}
	out, _, _, _ := mask(nil, []byte(s), 0, false, vals, true)
	return string(out)
}

// Writer returns a writer that masks secret values on their way to w.
// Flush must be called once the stream ends. The values are those known at
// each Write, so a secret resolved later is masked from then on.
func (r *Redactor) Writer(w io.Writer) *Writer { return &Writer{r: r, w: w} }

// Writer masks secret values in a stream, including values split across
// Write calls: it holds back the longest tail of what it was given that is
// a proper prefix of a secret, at most len(longest)-1 bytes, until more
// input shows whether the secret is there. It is safe for concurrent use;
// each Write is masked and written whole.
type Writer struct {
	r       *Redactor
	w       io.Writer
	mu      sync.Mutex
	held    []byte
	covered int  // held[:covered] continues a secret already masked
	cont    bool // the last Mask written reaches held[0]
	err     error
}

// Write masks p and writes what can be decided. It reports len(p) on
// success, whatever was held back.
func (m *Writer) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return 0, m.err
	}
	vals := m.r.snapshot()
	if len(vals) == 0 && len(m.held) == 0 {
		_, m.err = m.w.Write(p)
		if m.err != nil {
			return 0, m.err
		}
		return len(p), nil
	}
	buf := append(m.held, p...)
	out, hold, covered, cont := mask(nil, buf, m.covered, m.cont, vals, false)
	m.held = append(m.held[:0], buf[hold:]...) // copy: buf may alias held
	m.covered, m.cont = covered, cont
	if len(out) > 0 {
		if _, m.err = m.w.Write(out); m.err != nil {
			return 0, m.err
		}
	}
	return len(p), nil
}

// Flush writes what is held back, masked. The Writer can be used again.
func (m *Writer) Flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil || len(m.held) == 0 {
		m.cont = false
		return m.err
	}
	out, _, _, _ := mask(nil, m.held, m.covered, m.cont, m.r.snapshot(), true)
	m.held, m.covered, m.cont = m.held[:0], 0, false
	_, m.err = m.w.Write(out)
	return m.err
}

// mask appends to dst the masked form of buf. It returns where the held
// back tail starts (len(buf) when final), how many bytes at the start of
// that tail are covered by a secret already masked, and whether the output
// ends with a Mask that reaches the tail. The first pre bytes of buf are
// covered that way; cont says that a Mask written before reaches buf[0],
// so that a secret there continues it rather than adding another Mask:
// streaming in pieces then gives exactly what Redact gives for the whole.
func mask(dst, buf []byte, pre int, cont bool, vals [][]byte, final bool) ([]byte, int, int, bool) {
	var iv [][2]int
	if pre > 0 {
		iv = append(iv, [2]int{0, pre})
	}
	for _, v := range vals {
		for i := 0; i+len(v) <= len(buf); {
			j := bytes.Index(buf[i:], v)
			if j < 0 {
				break
			}
			iv = append(iv, [2]int{i + j, i + j + len(v)})
			i += j + 1
		}
	}
	hold := len(buf)
	if !final {
		hold = holdStart(buf, vals)
	}
	sort.Slice(iv, func(i, j int) bool { return iv[i][0] < iv[j][0] })
	pos, covered, reach := 0, 0, false
	for k := 0; k < len(iv); {
		a, b := iv[k][0], iv[k][1]
		for k++; k < len(iv) && iv[k][0] <= b; k++ { // merge overlapping and adjacent
			b = max(b, iv[k][1])
		}
		if a >= hold && !(a == 0 && pre > 0) {
			break // decided with the next Write
		}
		dst = append(dst, buf[pos:a]...)
		if !(a == 0 && cont) {
			dst = append(dst, Mask...)
		}
		pos = b
		if b >= hold {
			covered, pos, reach = b-hold, hold, true
			break
		}
	}
	if hold == 0 && !reach { // nothing decided: a Mask before still reaches buf[0]
		reach = cont
	}
	dst = append(dst, buf[pos:hold]...)
	return dst, hold, covered, reach
}

// holdStart returns the smallest s such that buf[s:] is a proper prefix of
// one of vals, or len(buf).
func holdStart(buf []byte, vals [][]byte) int {
	s := len(buf)
	for _, v := range vals {
		for n := min(len(v)-1, len(buf)); n > 0 && len(buf)-n < s; n-- {
			if bytes.HasPrefix(v, buf[len(buf)-n:]) {
				s = len(buf) - n
				break
			}
		}
	}
	return s
}
