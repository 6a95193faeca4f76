package workflow

import (
	"encoding/json"
	"github.com/picoflow/picoflow/executors"
	"reflect"
	"testing"
)

func TestParseOutputPath(t *testing.T) {
	tests := []struct {
		in   string
		want executors.OutputPath
		err  bool
	}{
		{in: ".", want: executors.OutputPath{}},
		{in: ".version", want: executors.OutputPath{{Key: "version"}}},
		{in: ".data.items[0].id", want: executors.OutputPath{{Key: "data"}, {Key: "items"}, {Index: 0, IsIndex: true}, {Key: "id"}}},
		{in: ".[2]", want: executors.OutputPath{{Index: 2, IsIndex: true}}},
		{in: ".a[1][2]", want: executors.OutputPath{{Key: "a"}, {Index: 1, IsIndex: true}, {Index: 2, IsIndex: true}}},
		{in: `.["odd key"].x`, want: executors.OutputPath{{Key: "odd key"}, {Key: "x"}}},
		{in: `.a["b]c"]`, want: executors.OutputPath{{Key: "a"}, {Key: "b]c"}}},
		{in: "", err: true},
		{in: "version", err: true},
		{in: "..a", err: true},
		{in: ".a.", err: true},
		{in: ".a[", err: true},
		{in: ".a[x]", err: true},
		{in: ".a[-1]", err: true},
		{in: ".a[+1]", err: true},
		{in: `.a["x]`, err: true},
		{in: ".a b", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := executors.ParseOutputPath(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if tt.err {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
			again, err := executors.ParseOutputPath(got.String())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("round trip through %q = %#v, %v", got.String(), again, err)
			}
		})
	}
}

func TestOutputPathLookup(t *testing.T) {
	var doc any
	if err := json.Unmarshal([]byte(`{"version": "1.2", "data": {"items": [{"id": 7}, {"id": 8}]}, "odd key": true}`), &doc); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want any
		ok   bool
	}{
		{".version", "1.2", true},
		{".data.items[1].id", 8.0, true},
		{`.["odd key"]`, true, true},
		{".", doc, true},
		{".missing", nil, false},
		{".data.items[2]", nil, false},
		{".version[0]", nil, false},
		{".data.items.id", nil, false},
	}
	for _, tt := range tests {
		p, err := executors.ParseOutputPath(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := p.Lookup(doc)
		if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Lookup(%s) = %v, %v; want %v, %v", tt.path, got, ok, tt.want, tt.ok)
		}
	}
}
