package journal

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// everyField returns an event with every field of Event set, each from s
// (strings s itself, numbers and booleans from its length, maps of two
// keys), so that a field appendEvent does not write shows as a difference
// with json.Marshal.
func everyField(s string, n int64) *Event {
	e := &Event{}
	v := reflect.ValueOf(e).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(s + v.Type().Field(i).Name)
		case reflect.Int, reflect.Int64:
			f.SetInt(n + int64(i))
		case reflect.Uint64, reflect.Uint16:
			f.SetUint(uint64(i))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]string{"b" + s: s, "a": "<" + s + ">", s: ""}))
		default:
			panic("everyField: a field of kind " + f.Kind().String() + ": teach appendEvent and this test")
		}
	}
	return e
}

// TestAppendEventIsMarshal: appendEvent writes the bytes json.Marshal
// gives, for the events a task writes, for every field set, for none, and
// for strings that need every kind of escape.
func TestAppendEventIsMarshal(t *testing.T) {
	cases := map[string]*Event{
		"zero":             {},
		"negative":         {Time: -1, ExitCode: -1, Attempt: -3, PGID: -2},
		"every-field":      everyField("x", 1),
		"every-escape":     everyField("\"\\/\b\f\n\r\t\x00\x01\x1f\x7f<>&'\u2028\u2029\ufffd\xff\xc3é€😀\xed\xa0\x80", -1<<62),
		"empty-maps":       {Params: map[string]string{}, Outputs: map[string]string{}},
		"task-started":     taskEvents()[0],
		"task-process":     taskEvents()[1],
		"task-finished":    taskEvents()[2],
		"multibyte-at-end": {Run: "é", Task: "\xe2\x82", Error: "a\xf0\x9f\x98"},
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) { checkAppendEvent(t, e) })
	}
}

func checkAppendEvent(t *testing.T, e *Event) {
	t.Helper()
	want, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendEvent(nil, e); !bytes.Equal(got, want) {
		t.Fatalf("appendEvent differs from json.Marshal:\n got %s\nwant %s", got, want)
	}
}

// FuzzAppendEventIsMarshal is TestAppendEventIsMarshal over any string and
// number.
func FuzzAppendEventIsMarshal(f *testing.F) {
	f.Add("x", int64(0))
	f.Add("<\u2028\xff\x00\"\\", int64(-1))
	f.Add(strings.Repeat("é", 700), int64(1)<<40)
	f.Fuzz(func(t *testing.T, s string, n int64) {
		checkAppendEvent(t, everyField(s, n))
		checkAppendEvent(t, &Event{Time: n, Run: s, Outputs: map[string]string{s: s, s + "\x00": ""}})
	})
}
