package journal

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// fastCases are payloads in and out of the shape json.Marshal writes:
// escapes, bytes that are not UTF-8, keys in another case or given twice,
// unknown keys, nulls, floats, leading zeros, whitespace, trailing bytes,
// values of the wrong kind.
var fastCases = []string{
	`{}`, `{"ts":1}`, `{"ts":-0}`, `{"ts":01}`, `{"ts":1.5}`, `{"ts":1e3}`, `{"ts":-}`, `{"ts":"1"}`,
	`{"ts":99999999999999999999}`, `{"ts":9223372036854775807}`, `{"ts":9223372036854775808}`,
	`{"ts":-9223372036854775808}`, `{"ts":-9223372036854775809}`, `{"ts":9999999999999999999}`,
	`{"attempt":-2147483648}`, `{"pgid":2147483648}`, `{"attempt":9223372036854775807}`, `{"attempt":1e2}`,
	`{"TS":1}`, `{"Run":"a"}`, `{"ts":1,"ts":2}`, `{"x":1}`, `{"run":null}`, `{ "ts":1}`, `{"ts":1} `,
	`{"ts":1,}`, `{"ts":1}}`, `{"ts":1`, `{"run":"a\"b"}`, `{"run":"\u00e9\ud800x"}`, `{"run":"\ud83d\ude00"}`,
	"{\"run\":\"\xff\"}", "{\"tail\":\"\xff\xfe\"}", `{"definition":"a\qb"}`, `{"definition":"a\u12"}`,
	`{"definition":5}`, `{"definition":"name: x\ntasks: []\n"}`, "{\"run\":\"a\tb\"}", `{"run":"a\u0000"}`,
	`{"log":"\/x"}`, `{"resumed":true,"retryable":false}`, `{"resumed":tru}`, `{"resumed":trueish}`,
	`{"params":{"a":"b","a":"c"}}`, `{"params":{"a":1}}`, `{"params":{}}`, `{"params":null}`,
	`{"params":{"a":"b"},"params":{"c":"d"}}`, `{"outputs":{}}`, `{"outputs":null}`, `{"outputs":{"k":"v\n"}}`,
	`{"outputs":"x"}`, `{"error":"e","tail":"t","reason":"r","by":"me@h/1","reused_from":"r0"}`,
	`{"status":"success","exit_code":-1,"duration_ms":12,"retry_at":5,"backoff_ms":7,"pgid":3}`,
	`{"ts":1,"run":"a","run":"b"}`, `{"ts":1,"run":"a","Run":"b"}`, `{"ts":1,"run":"a","task":x}`, `{"ts":1,"run":"a"}`,
	`{"ts":01,"run":"a"}`, `{"ts":1,"run":"a\"b"}`, `{"ts":1,"run":"a"`, `{"ts":1,"run":"a"x`,
	`{"ts":1,"run":"r","task":"t","attempt":2,"workflow":"w","def_hash":"h","source":"s","trigger":"manual",` +
		`"fire_time":4,"rerun_of":"r0"}`, `[]`, `"x"`, `null`, ``, `{`,
}

// TestDecodeAgreesWithJSON: whatever path it takes, decoding a payload
// gives what encoding/json gives: the same event, or an error when it
// fails; lean, the same but for the big fields. The payloads json.Marshal
// writes take the fast path.
func TestDecodeAgreesWithJSON(t *testing.T) {
	for _, p := range fastCases {
		checkAgrees(t, []byte(p))
	}
	for i := range 120 {
		e := testEvent(i, i*5)
		if i == 7 {
			e.Error, e.Reason = "exit 1: <html> & \"quotes\"\u2028", "caf\u00e9"
		}
		p, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		checkAgrees(t, p)
		var ps parsed
		if !parseFast(p, &Event{}, &ps) {
			t.Errorf("what json.Marshal writes does not take the fast path: %s", p)
		}
	}
}

// FuzzDecodeAgreesWithJSON is TestDecodeAgreesWithJSON over any payload.
func FuzzDecodeAgreesWithJSON(f *testing.F) {
	for _, p := range fastCases {
		f.Add([]byte(p))
	}
	p, _ := json.Marshal(goldenEvent())
	f.Add(p)
	f.Fuzz(func(t *testing.T, p []byte) { checkAgrees(t, p) })
}

func checkAgrees(t *testing.T, p []byte) {
	t.Helper()
	want := &Event{}
	werr := json.Unmarshal(p, want)
	checkRunOnly(t, p, want, werr)
	peek, peeked := peekRun(p) // what Entry.Run gives, when it can
	want.Seq, want.Type = 9, TaskFinished
	scanning := Entry{scratch: &Event{Run: "stale", Tail: "stale"}, ps: parsed{strs: &interner{}}}
	for k, d := range []Decoding{Whole, Lean, Whole, Lean} {
		var en Entry
		if k >= 2 { // as a scanner decodes: into its scratch event, its strings interned
			en = scanning
		}
		if err := en.reset(appendEnvelope(nil, TaskFinished, 9, p), 9); err != nil {
			t.Fatal(err)
		}
		run := en.Run()
		got, err := en.event(d)
		if k >= 2 {
			scanning = en
		}
		switch {
		case werr != nil && err == nil:
			t.Errorf("%q decoded %s: %+v; encoding/json: %v", p, decodingName(d), got, werr)
			continue
		case werr != nil:
			if !strings.Contains(err.Error(), "entry 9: decode task_finished payload") || run != "" && run != string(peek) {
				t.Errorf("%q: error %v, run %q", p, err, run)
			}
			continue
		case err != nil:
			t.Errorf("%q: %s: %v; encoding/json decodes it", p, decodingName(d), err)
			continue
		}
		w := *want
		if d == Lean {
			lean(&w)
			lean(got)
		}
		if !reflect.DeepEqual(got, &w) || run != want.Run && (!peeked || !namesRunAgain(p, peek)) {
			t.Errorf("%q %s:\n got %+v (run %q)\nwant %+v", p, decodingName(d), got, run, &w)
		}
	}
}

// checkRunOnly: a RunOnly decoding gives the run encoding/json reads, but
// for a payload that names a run again after the one it starts with (see
// RunOnly), and fails where it does unless the payload starts as
// json.Marshal writes.
func checkRunOnly(t *testing.T, p []byte, want *Event, werr error) {
	t.Helper()
	var en Entry
	if err := en.reset(appendEnvelope(nil, TaskStarted, 9, p), 9); err != nil {
		t.Fatal(err)
	}
	got, err := en.event(RunOnly)
	run, peeked := peekRun(p)
	switch {
	case werr != nil && err == nil && !peeked:
		t.Errorf("%q decoded run only (%q); encoding/json: %v", p, got.Run, werr)
	case werr != nil:
	case err != nil:
		t.Errorf("%q run only: %v; encoding/json decodes it", p, err)
	case got.Seq != 9 || got.Type != TaskStarted || peeked && (got.Time != 0 || got.Task != ""):
		t.Errorf("%q run only: %+v", p, got)
	case got.Run != want.Run && (!peeked || !namesRunAgain(p, run)):
		t.Errorf("%q run only: run %q, encoding/json %q", p, got.Run, want.Run)
	}
}

// namesRunAgain reports whether payload p, without the run member it
// starts with, still names a run for encoding/json.
func namesRunAgain(p, run []byte) bool {
	i := bytes.Index(p, []byte(`,"run":"`))
	rest := append(append([]byte{}, p[:i]...), p[i+len(`,"run":"`)+len(run)+1:]...)
	var e Event
	return json.Unmarshal(rest, &e) == nil && e.Run != ""
}

// lean clears what a Lean decoding may leave out.
func lean(e *Event) {
	e.Definition, e.LogPath, e.Error, e.Tail, e.Outputs = "", "", "", "", nil
}

func decodingName(d Decoding) string { return [...]string{"whole", "lean", "skip"}[d] }

// TestSkipPlain: skipPlain stops at the first byte that is not plain,
// wherever it is among the eight it tests at a time, and at the end.
func TestSkipPlain(t *testing.T) {
	for c := range 256 {
		for at := range 20 {
			for from := range 3 {
				p := []byte(strings.Repeat("aé~", 7)) // 28 bytes, some above 0x7f
				p[at] = byte(c)
				want := len(p)
				if at >= from && !plain[c] {
					want = at
				}
				if got := skipPlain(p, from); got != want {
					t.Fatalf("byte %#x at %d, from %d: %d, want %d", c, at, from, got, want)
				}
			}
		}
	}
}
