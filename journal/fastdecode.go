package journal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// A fast path for decoding payloads. encoding/json validates and unquotes
// every byte of every event through reflection, and a replay decodes the
// whole journal: in a home with a long history that was most of the cost of
// `picoflow run` (issue 16). Payloads are what json.Marshal wrote, in one
// shape: an object without whitespace, each key once, spelt as the Event
// tags spell it. parseFast reads that shape by hand and gives up (false) on
// anything else, and decode then uses encoding/json, so that the result is
// always what json.Unmarshal gives. parseFast never unquotes a string with
// an escape itself (it hands that one token to encoding/json) and leaves
// the big fields (definition, tail, error, log, outputs) as raw tokens that
// fill materializes only when the entry is wanted whole.

// Field numbers of the payload keys, in Event's order.
const (
	fTS = iota
	fRun
	fTask
	fAttempt
	fWorkflow
	fDefHash
	fDefinition
	fSource
	fTrigger
	fParams
	fFireTime
	fRerunOf
	fLog
	fPGID
	fResumed
	fStatus
	fExitCode
	fError
	fDurationMS
	fTail
	fOutputs
	fRetryable
	fReason
	fBy
	fReusedFrom
	fRetryAt
	fBackoffMS
	fieldCount
)

// bigFields are left raw by parseFast: the fields a lean entry leaves out
// (see Lean).
const bigFields = 1<<fDefinition | 1<<fTail | 1<<fError | 1<<fLog | 1<<fOutputs

// fieldOf returns the field number of key (-1: not a key of Event).
func fieldOf(key []byte) int {
	k := string(key) // a switch on it allocates nothing
	switch k {
	case "ts":
		return fTS
	case "run":
		return fRun
	case "task":
		return fTask
	case "attempt":
		return fAttempt
	case "workflow":
		return fWorkflow
	case "def_hash":
		return fDefHash
	case "definition":
		return fDefinition
	case "source":
		return fSource
	case "trigger":
		return fTrigger
	case "params":
		return fParams
	case "fire_time":
		return fFireTime
	case "rerun_of":
		return fRerunOf
	case "log":
		return fLog
	case "pgid":
		return fPGID
	case "resumed":
		return fResumed
	case "status":
		return fStatus
	case "exit_code":
		return fExitCode
	case "error":
		return fError
	case "duration_ms":
		return fDurationMS
	case "tail":
		return fTail
	case "outputs":
		return fOutputs
	case "retryable":
		return fRetryable
	case "reason":
		return fReason
	case "by":
		return fBy
	case "reused_from":
		return fReusedFrom
	case "retry_at":
		return fRetryAt
	case "backoff_ms":
		return fBackoffMS
	}
	return -1
}

// bigOrder lists the big fields; parsed.big holds their tokens in this order.
var bigOrder = [...]int{fDefinition, fLog, fError, fTail, fOutputs}

// parsed is a payload parseFast read: the event without its big fields,
// and their raw tokens.
type parsed struct {
	big  [len(bigOrder)][]byte // raw tokens of the big fields present (nil: absent)
	strs *interner             // a scanner's (nil: none)
}

// str returns b as a string, interned when ps has an interner.
func (ps *parsed) str(b []byte) string {
	if ps.strs == nil {
		return string(b)
	}
	return ps.strs.get(b)
}

// peekRun reads the run at the start of a payload as json.Marshal writes
// an Event: {"ts":<integer>,"run":"<string>" followed by a comma or the
// end; false for anything else (a string with an escape included).
func peekRun(p []byte) ([]byte, bool) {
	const ts, run = `{"ts":`, `,"run":"`
	if !bytes.HasPrefix(p, []byte(ts)) {
		return nil, false
	}
	i := len(ts)
	j := i
	for j < len(p) && (p[j] == '-' || '0' <= p[j] && p[j] <= '9') {
		j++
	}
	if _, ok := parseInt(p[i:j], 64); !ok || !bytes.HasPrefix(p[j:], []byte(run)) {
		return nil, false
	}
	k := j + len(run)
	n := k
	var high byte // the high bits of the run's bytes: 0 when it is ASCII, which is UTF-8
	for n < len(p) && plain[p[n]] {
		high |= p[n] & 0x80
		n++
	}
	if n+1 >= len(p) || p[n] != '"' || p[n+1] != ',' && p[n+1] != '}' || high != 0 && !utf8.Valid(p[k:n]) {
		return nil, false
	}
	return p[k:n], true
}

// interner hands out the same string for the same bytes among the last
// few it made: the run, task, workflow and status of the events of a
// journal repeat, and a replay of a long history then allocates them once.
type interner [64]string

// get looks b up in one slot, chosen by its length and its first, middle
// and last bytes (by its length and last byte alone, a run's "success"
// and its source "one.yaml" took each other's slot, two allocations a
// run in a replay of a long history).
func (in *interner) get(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	slot := &in[internSlot(b)]
	if *slot != string(b) {
		*slot = string(b)
	}
	return *slot
}

// put makes s the string get hands out for its bytes.
func (in *interner) put(s string) {
	if s != "" {
		in[internSlot(s)] = s
	}
}

func internSlot[T string | []byte](b T) int {
	h := ((len(b)*31+int(b[0]))*31+int(b[len(b)/2]))*31 + int(b[len(b)-1])
	return h % len(interner{})
}

// bigSlot returns where parsed.big keeps field f.
func bigSlot(f int) int {
	for i, b := range bigOrder {
		if b == f {
			return i
		}
	}
	return -1
}

// parseFast reads payload p into e, all but the big fields, which it keeps
// raw in ps. It returns false when p is not in the shape json.Marshal
// writes, or a value does not fit its field; e is then partly set.
func parseFast(p []byte, e *Event, ps *parsed) bool {
	if len(p) < 2 || p[0] != '{' || p[len(p)-1] != '}' {
		return false
	}
	var seen uint32
	i := 1
	if p[i] == '}' {
		return i == len(p)-1
	}
	for {
		_, j, ok := scanString(p, i)
		if !ok || j >= len(p) || p[j] != ':' {
			return false
		}
		f := fieldOf(p[i+1 : j-1])
		if f < 0 || seen&(1<<f) != 0 {
			return false // an unknown key (json matches keys ignoring case) or one given twice
		}
		seen |= 1 << f
		end, ok := scanValue(p, j+1)
		if !ok || !setField(e, ps, f, p[j+1:end]) {
			return false
		}
		switch {
		case end == len(p)-1:
			return true
		case end >= len(p) || p[end] != ',':
			return false
		}
		i = end + 1
	}
}

// setField stores token v in field f of e, or keeps it raw in ps for a
// big field (after checking that it is of the field's kind).
func setField(e *Event, ps *parsed, f int, v []byte) bool {
	if bigFields&(1<<f) != 0 {
		ps.big[bigSlot(f)] = v
		if f == fOutputs {
			return v[0] == '{'
		}
		return v[0] == '"'
	}
	switch f {
	case fTS, fFireTime, fDurationMS, fRetryAt, fBackoffMS:
		n, ok := parseInt(v, 64)
		*int64Field(e, f) = n
		return ok
	case fAttempt, fPGID, fExitCode:
		n, ok := parseInt(v, strconv.IntSize)
		*intField(e, f) = int(n)
		return ok
	case fResumed, fRetryable:
		b, ok := parseBool(v)
		*boolField(e, f) = b
		return ok
	case fParams:
		return v[0] == '{' && json.Unmarshal(v, &e.Params) == nil
	}
	if len(v) >= 2 && v[0] == '"' {
		if in := v[1 : len(v)-1]; !hasEscape(in) && utf8.Valid(in) {
			*stringField(e, f) = ps.str(in)
			return true
		}
	}
	s, ok := stringValue(v)
	*stringField(e, f) = s
	return ok
}

func int64Field(e *Event, f int) *int64 {
	switch f {
	case fTS:
		return &e.Time
	case fFireTime:
		return &e.FireTime
	case fDurationMS:
		return &e.DurationMS
	case fRetryAt:
		return &e.RetryAt
	}
	return &e.BackoffMS
}

func intField(e *Event, f int) *int {
	switch f {
	case fAttempt:
		return &e.Attempt
	case fPGID:
		return &e.PGID
	}
	return &e.ExitCode
}

func boolField(e *Event, f int) *bool {
	if f == fResumed {
		return &e.Resumed
	}
	return &e.Retryable
}

func stringField(e *Event, f int) *string {
	switch f {
	case fRun:
		return &e.Run
	case fTask:
		return &e.Task
	case fWorkflow:
		return &e.Workflow
	case fDefHash:
		return &e.DefHash
	case fDefinition:
		return &e.Definition
	case fSource:
		return &e.Source
	case fTrigger:
		return &e.Trigger
	case fRerunOf:
		return &e.RerunOf
	case fLog:
		return &e.LogPath
	case fStatus:
		return &e.Status
	case fError:
		return &e.Error
	case fTail:
		return &e.Tail
	case fReason:
		return &e.Reason
	case fBy:
		return &e.By
	}
	return &e.ReusedFrom
}

// fill sets e's big fields from their raw tokens in ps.
func fill(e *Event, ps *parsed) bool {
	for i, v := range ps.big {
		switch f := bigOrder[i]; {
		case v == nil:
		case f == fOutputs:
			if v[0] != '{' || json.Unmarshal(v, &e.Outputs) != nil {
				return false
			}
		default:
			s, ok := stringValue(v)
			if !ok {
				return false
			}
			*stringField(e, f) = s
		}
	}
	return true
}

// stringValue returns the string a string token holds. A token with an
// escape or with bytes that are not UTF-8 (json replaces them) is
// unquoted by encoding/json.
func stringValue(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	if in := v[1 : len(v)-1]; !hasEscape(in) && utf8.Valid(in) {
		return string(in), true
	}
	var s string
	return s, json.Unmarshal(v, &s) == nil
}

func hasEscape(b []byte) bool { return bytes.IndexByte(b, '\\') >= 0 }

// scanString reads the string token starting at p[i] (a quote). It
// returns the index after its closing quote and whether it holds an
// escape; ok is false unless it is a string JSON allows.
func scanString(p []byte, i int) (escaped bool, end int, ok bool) {
	if i >= len(p) || p[i] != '"' {
		return false, 0, false
	}
	for i++; i < len(p); i++ {
		if i = skipPlain(p, i); i == len(p) {
			break
		}
		switch c := p[i]; {
		case c == '"':
			return escaped, i + 1, true
		case c < 0x20:
			return false, 0, false
		case c == '\\':
			n := escapeLen(p, i)
			if n == 0 {
				return false, 0, false
			}
			escaped, i = true, i+n-1
		}
	}
	return false, 0, false
}

// skipPlain returns the index of the first byte from p[i] on that is not
// plain (len(p) when there is none). It tests eight bytes at a time: the
// strings of a run_started (its definition, its hash) are most of what a
// replay of a long history scans.
func skipPlain(p []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(p); i += 8 {
		x := binary.LittleEndian.Uint64(p[i:])
		q, b := x^(ones*'"'), x^(ones*'\\')
		// the high bit of a byte below 0x20, or of a quote or a backslash
		// (a zero byte of q or b), is set in at least one of the three
		if ((x-ones*0x20)&^x|(q-ones)&^q|(b-ones)&^b)&highs != 0 {
			break
		}
	}
	for i < len(p) && plain[p[i]] {
		i++
	}
	return i
}

// escapeLen returns the length of the escape at p[i] (a backslash), 0 when
// JSON does not allow it.
func escapeLen(p []byte, i int) int {
	if i+1 >= len(p) {
		return 0
	}
	switch p[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
		if i+6 > len(p) {
			return 0
		}
		for _, c := range p[i+2 : i+6] {
			if !isHex(c) {
				return 0
			}
		}
		return 6
	}
	return 0
}

// plain marks the bytes a string token holds as they are: not a quote, a
// backslash or a control character.
var plain = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// scanValue returns the end of the value token at p[i]: a string, an
// integer, true, false, or an object of strings (params, outputs).
func scanValue(p []byte, i int) (int, bool) {
	if i >= len(p) {
		return 0, false
	}
	switch c := p[i]; {
	case c == '"':
		_, end, ok := scanString(p, i)
		return end, ok
	case c == '-' || '0' <= c && c <= '9':
		end := i + 1
		for end < len(p) && '0' <= p[end] && p[end] <= '9' {
			end++
		}
		return end, true // parseInt checks the digits
	case c == 't' || c == 'f':
		end := i
		for end < len(p) && 'a' <= p[end] && p[end] <= 'z' {
			end++
		}
		return end, true // parseBool checks the word
	case c == '{':
		return scanStringObject(p, i)
	}
	return 0, false // null, arrays, floats: encoding/json's to judge
}

// scanStringObject returns the end of the object of string values at p[i].
func scanStringObject(p []byte, i int) (int, bool) {
	i++
	if i < len(p) && p[i] == '}' {
		return i + 1, true
	}
	for {
		_, j, ok := scanString(p, i)
		if !ok || j >= len(p) || p[j] != ':' {
			return 0, false
		}
		_, end, ok := scanString(p, j+1)
		if !ok || end >= len(p) {
			return 0, false
		}
		switch p[end] {
		case '}':
			return end + 1, true
		case ',':
			i = end + 1
		default:
			return 0, false
		}
	}
}

// parseInt parses an integer token as JSON writes it (no leading zero, no
// plus sign) into bits bits.
func parseInt(v []byte, bits int) (int64, bool) {
	d := v
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || d[0] == '0' && len(d) > 1 {
		return 0, false
	}
	if len(d) <= 9 || bits == 64 && len(d) <= 19 { // 19 digits fit a uint64
		n := uint64(0)
		for _, c := range d {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + uint64(c-'0')
		}
		neg := len(d) < len(v)
		switch {
		case n <= math.MaxInt64 && neg:
			return -int64(n), true
		case n <= math.MaxInt64:
			return int64(n), true
		case neg && n == math.MaxInt64+1:
			return math.MinInt64, true
		}
		return 0, false
	}
	n, err := strconv.ParseInt(string(v), 10, bits)
	return n, err == nil
}

func parseBool(v []byte) (bool, bool) {
	switch string(v) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}
