package journal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// A run_started event carries the whole definition: 7–10 MB for a
// 100,000-task workflow. json.Encoder builds an entry in a buffer of its
// own that grows by doubling (up to twice the definition while it grows)
// before the entry is copied out of it, and the journal copies the entry
// twice more (the wal's batch, the wal's segment): the encoder's buffer was
// a big DAG's peak. newBigEntry writes the same bytes straight into one
// buffer of the exact size: the event's other fields through json.Marshal,
// the definition escaped piece by piece by json.Marshal too, so that the
// bytes are those json.Marshal gives for the whole event (TestBigEntry).

// bigDefinition is the definition length from which newEntry splices the
// definition in instead of encoding it with the rest.
const bigDefinition = 256 << 10

// definitionChunk is how much of the definition one json.Marshal escapes.
const definitionChunk = 64 << 10

// defPlaceholder stands for the definition while the other fields are
// encoded; json.Marshal writes it as `"\u0000"`. Only a key is a quoted
// string followed by a colon without a backslash before its quotes, so the
// first match of defKey is the definition's.
const (
	defPlaceholder = "\x00"
	defKey         = `"definition":"\u0000"`
)

// newBigEntry is newEntry for an event with a big definition.
func newBigEntry(e *Event) ([]byte, error) {
	c := *e
	c.Definition = defPlaceholder
	head, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	at := bytes.Index(head, []byte(defKey))
	if at < 0 {
		return nil, fmt.Errorf("encode definition: no %s in the encoded event", defKey)
	}
	at += len(`"definition":`)
	rest := head[at+len(`"\u0000"`):]
	n := 2 // the quotes
	if err := escapeString(e.Definition, func(q []byte) { n += len(q) }); err != nil {
		return nil, err
	}
	b := make([]byte, headerSize, headerSize+at+n+len(rest))
	b = append(b, head[:at]...)
	b = append(b, '"')
	if err := escapeString(e.Definition, func(q []byte) { b = append(b, q...) }); err != nil {
		return nil, err
	}
	b = append(b, '"')
	return append(b, rest...), nil
}

// escapeString calls fn with the JSON escaping of s, without its quotes,
// piece by piece, as json.Marshal writes it: each piece is a json.Marshal
// of a part of s that ends before a rune's first byte (a rune is never
// split; an invalid byte escapes alone either way).
func escapeString(s string, fn func([]byte)) error {
	for len(s) > 0 {
		k := min(len(s), definitionChunk)
		for k < len(s) && !utf8.RuneStart(s[k]) {
			k++
		}
		q, err := json.Marshal(s[:k])
		if err != nil {
			return err
		}
		fn(q[1 : len(q)-1])
		s = s[k:]
	}
	return nil
}
