package dag

import (
	"html"
	"testing"
)

// TestEscapeIsHTMLEscapeString: Escape replaces html.EscapeString (see its
// comment), so it must write the same bytes for every input.
func TestEscapeIsHTMLEscapeString(t *testing.T) {
	for _, s := range []string{
		"", "plain", `<script>alert("x")</script>`, "a & b", "it's", "&amp;",
		"<<>>&&''\"\"", "日本語 <b>", "\x00\xff<", "tab\there\nnewline",
	} {
		if got, want := Escape(s), html.EscapeString(s); got != want {
			t.Errorf("Escape(%q) = %q, html.EscapeString gives %q", s, got, want)
		}
	}
}

func FuzzEscape(f *testing.F) {
	f.Add(`<a href="x">'&'</a>`)
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := Escape(s), html.EscapeString(s); got != want {
			t.Fatalf("Escape(%q) = %q, html.EscapeString gives %q", s, got, want)
		}
	})
}
