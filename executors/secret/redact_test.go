package secret

import (
	"bytes"
	"strings"
	"testing"
)

func redactor(vals ...string) *Redactor {
	r := &Redactor{}
	for _, v := range vals {
		r.Add(v)
	}
	return r
}

func TestRedact(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		in      string
		want    string
	}{
		{"none known", nil, "hunter2", "hunter2"},
		{"one", []string{"hunter2"}, "pw=hunter2.", "pw=***."},
		{"twice", []string{"hunter2"}, "hunter2 hunter2", "*** ***"},
		{"adjacent", []string{"ab"}, "abab", "***"},
		{"overlapping secrets", []string{"abc", "bcd"}, "xabcdx", "x***x"},
		{"one inside another", []string{"secret", "cre"}, "a secret, cre", "a ***, ***"},
		{"query escaped", []string{"p&ss w"}, "url?pw=p%26ss+w", "url?pw=***"},
		{"path escaped", []string{"p/ss w"}, "/x/p%2Fss%20w/", "/x/***/"},
		{"json escaped", []string{"a\"b\\c"}, `{"pw":"a\"b\\c"}`, `{"pw":"***"}`},
		{"empty ignored", []string{""}, "text", "text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redactor(tt.secrets...).Redact(tt.in); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// stream writes in through a Writer in the given piece sizes (cycled).
func stream(r *Redactor, in string, sizes []int) string {
	var out bytes.Buffer
	w := r.Writer(&out)
	for i := 0; len(in) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(in))
		if _, err := w.Write([]byte(in[:n])); err != nil {
			panic(err)
		}
		in = in[n:]
	}
	if err := w.Flush(); err != nil {
		panic(err)
	}
	return out.String()
}

func TestWriterSplits(t *testing.T) {
	r := redactor("hunter2", "abc", "bcd", "xyzzy")
	inputs := []string{
		"the password is hunter2\nagain: hunter2hunter2 and hunte r2 and hunter",
		"xabcdx abcabc bcdbcd ab cd xyzzxyzzy hunterhunter2",
		"hunter", "hunter2", "h", "",
	}
	for _, in := range inputs {
		want := r.Redact(in)
		for size := 1; size <= len(in)+1; size++ {
			if got := stream(r, in, []int{size}); got != want {
				t.Errorf("%q in pieces of %d: got %q, want %q", in, size, got, want)
			}
		}
		if got := stream(r, in, []int{1, 3, 2, 7}); got != want {
			t.Errorf("%q in uneven pieces: got %q, want %q", in, got, want)
		}
	}
}

func TestWriterHoldsOnlyPrefixes(t *testing.T) {
	var out bytes.Buffer
	w := redactor("hunter2").Writer(&out)
	w.Write([]byte("line one\nhun"))
	if got := out.String(); got != "line one\n" {
		t.Fatalf("after a possible prefix: %q", got)
	}
	w.Write([]byte("gry\n"))
	if got := out.String(); got != "line one\nhungry\n" {
		t.Fatalf("after the prefix turned out harmless: %q", got)
	}
}

func TestWriterLearnsSecrets(t *testing.T) {
	var out bytes.Buffer
	r := &Redactor{}
	w := r.Writer(&out)
	w.Write([]byte("before "))
	r.Add("s3cret")
	w.Write([]byte("s3cret after"))
	w.Flush()
	if got := out.String(); got != "before *** after" {
		t.Fatalf("got %q", got)
	}
}

func FuzzWriter(f *testing.F) {
	f.Add("hunter2", "abc", "pw hunter2 abcabc hunter", uint8(3))
	f.Add("aa", "aaa", "aaaaaaaa", uint8(1))
	f.Fuzz(func(t *testing.T, s1, s2, in string, size uint8) {
		r := redactor(s1, s2)
		got := stream(r, in, []int{int(size)%9 + 1})
		if want := r.Redact(in); got != want {
			t.Fatalf("streamed %q, whole %q", got, want)
		}
		for _, s := range []string{s1, s2} {
			// A secret holding '*' may be spelt by a Mask and its neighbours.
			if s != "" && !strings.Contains(s, "*") && strings.Contains(got, s) {
				t.Fatalf("secret %q survives in %q", s, got)
			}
		}
	})
}

// TestRedactEscapedForms masks the forms tools print a secret in: JSON
// with and without HTML escaping (python, jq), python's ASCII-only JSON,
// and shell single-quoting as sh and python's shlex.quote write it.
func TestRedactEscapedForms(t *testing.T) {
	var r Redactor
	r.Add(`pa&ss"w0'rd€`)
	for _, tc := range []struct{ name, in string }{
		{"raw", `x pa&ss"w0'rd€ x`},
		{"json html-escaped", `{"p":"pa\u0026ss\"w0'rd€"}`},
		{"json", `{"p":"pa&ss\"w0'rd€"}`},
		{"json ascii", `{"p": "pa&ss\"w0'rd\u20ac"}`},
		{"sh quoted", `+ curl -u 'pa&ss"w0'\''rd€'`},
		{"shlex quoted", `curl -u 'pa&ss"w0'"'"'rd€'`},
		{"query", `?p=pa%26ss%22w0%27rd%E2%82%AC`},
	} {
		if got := r.Redact(tc.in); strings.Contains(got, "ss") {
			t.Errorf("%s: %q left %q", tc.name, tc.in, got)
		}
	}
}
