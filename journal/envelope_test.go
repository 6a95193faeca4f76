package journal

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files and crash fixtures under testdata/ (never testdata/journal/v1)")

// goldenEvent is the fixed event whose envelope is pinned byte for byte.
func goldenEvent() *Event {
	return &Event{
		Type:       RunStarted,
		Time:       baseTime,
		Run:        "r-20231114-0001",
		Workflow:   "nightly-backup",
		DefHash:    "sha256:5f2b0c",
		Definition: "name: nightly-backup\ntasks:\n  - name: dump\n    run: pg_dump app\n",
		Source:     "/etc/picoflow/nightly.yaml",
		Trigger:    "manual",
		Params:     map[string]string{"region": "eu-west-1", "env": "prod"},
	}
}

// TestEnvelopeGolden pins the on-disk bytes: the envelope of a fixed event,
// and the segment file Append writes for it (the wal's uvarint length
// prefix followed by that envelope). A change here breaks every journal
// already written; refresh with -update only for a deliberate, versioned
// format change.
func TestEnvelopeGolden(t *testing.T) {
	const seq = 1
	e := goldenEvent()
	payload, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	env := appendEnvelope(nil, e.Type, seq, payload)

	golden := filepath.Join("testdata", "golden", "envelope-run-started.golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(hex.Dump(env)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got := hex.Dump(env); got != string(want) {
		t.Fatalf("envelope bytes changed:\n got:\n%s\nwant:\n%s", got, want)
	}

	// The header fields sit where doc.go says.
	fields := []struct {
		name string
		got  uint64
		want uint64
	}{
		{"version", uint64(env[0]), envelopeVersion},
		{"flags", uint64(env[1]), 0},
		{"type", uint64(binary.LittleEndian.Uint16(env[2:])), uint64(RunStarted)},
		{"seq", binary.LittleEndian.Uint64(env[4:]), seq},
		{"length", uint64(binary.LittleEndian.Uint32(env[12:])), uint64(len(payload))},
	}
	for _, f := range fields {
		if f.got != f.want {
			t.Errorf("header %s = %d, want %d", f.name, f.got, f.want)
		}
	}
	if !bytes.Equal(env[headerSize:], payload) {
		t.Errorf("payload not stored verbatim after the header")
	}
	// The checksum is CRC32C (its standard check value), over the first 16
	// header bytes followed by the payload.
	if got := crc32c(0, []byte("123456789")); got != 0xe3069283 {
		t.Errorf("crc table: check value %08x, want CRC32C's e3069283", got)
	}
	crcInput := append(bytes.Clone(env[:16]), payload...)
	if got, want := binary.LittleEndian.Uint32(env[16:]), crc32.Checksum(crcInput, crc32.MakeTable(crc32.Castagnoli)); got != want {
		t.Errorf("header crc = %08x, want %08x", got, want)
	}

	// Append writes exactly that envelope, framed by the wal.
	dir := t.TempDir()
	j := openJournal(t, dir, Options{})
	if err := j.Append(goldenEvent()); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	seg, err := os.ReadFile(filepath.Join(dir, segmentName(1)))
	if err != nil {
		t.Fatal(err)
	}
	wantSeg := binary.AppendUvarint(nil, uint64(len(env)))
	wantSeg = append(wantSeg, env...)
	if !bytes.Equal(seg, wantSeg) {
		t.Fatalf("segment file:\n%s\nwant:\n%s", hex.Dump(seg), hex.Dump(wantSeg))
	}
}

// validEnvelope is a verified envelope of the golden event stored at seq 7.
func validEnvelope(t testing.TB) []byte {
	t.Helper()
	p, err := json.Marshal(goldenEvent())
	if err != nil {
		t.Fatal(err)
	}
	return appendEnvelope(nil, RunStarted, 7, p)
}

// withCRC rewrites the checksum of an envelope so that only the deliberate
// change is wrong.
func withCRC(b []byte) []byte {
	crc := crc32c(crc32c(0, b[:16]), b[headerSize:])
	binary.LittleEndian.PutUint32(b[16:], crc)
	return b
}

func TestVerifyRejects(t *testing.T) {
	valid := validEnvelope(t)
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(valid)) }
	setLen := func(n uint32) []byte {
		return mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[12:], n); return b })
	}
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"nil", nil, "0 bytes, shorter than the 20-byte header"},
		{"one byte", valid[:1], "1 bytes, shorter than"},
		{"header cut", valid[:headerSize-1], "19 bytes, shorter than"},
		{"zeros", make([]byte, 64), "envelope version 0, want 1"},
		{"zero header", make([]byte, headerSize), "envelope version 0"},
		{"version 2", mutate(func(b []byte) []byte { b[0] = 2; return withCRC(b) }), "envelope version 2, want 1"},
		{"version ff", mutate(func(b []byte) []byte { b[0] = 0xff; return b }), "envelope version 255"},
		{"length one more", setLen(uint32(len(valid) - headerSize + 1)), "payload length"},
		{"length one less", setLen(uint32(len(valid) - headerSize - 1)), "payload length"},
		{"length zero", setLen(0), "payload length 0, entry holds"},
		{"length max", setLen(0xffffffff), "payload length 4294967295"},
		{"payload cut", valid[:len(valid)-1], "payload length"},
		{"payload extended", append(bytes.Clone(valid), '}'), "payload length"},
		{"header only", mutate(func(b []byte) []byte { return b[:headerSize] }), "payload length"},
		{"crc field flipped", mutate(func(b []byte) []byte { b[16] ^= 1; return b }), "crc32c"},
		{"crc zeroed", mutate(func(b []byte) []byte { clear(b[16:20]); return b }), "crc32c"},
		{"payload byte changed", mutate(func(b []byte) []byte { b[len(b)-2] = 'X'; return b }), "crc32c"},
		{"type changed", mutate(func(b []byte) []byte { b[2] = byte(TaskStarted); return b }), "crc32c"},
		{"seq changed", mutate(func(b []byte) []byte { b[4]++; return b }), "crc32c"},
		{"flags set", mutate(func(b []byte) []byte { b[1] = 1; return b }), "crc32c"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			typ, seq, payload, err := verify(tc.in)
			if err == nil {
				t.Fatalf("verify accepted it: type %d seq %d payload %q", typ, seq, payload)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %v does not wrap ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// TestVerifyRejectsEveryFlip corrupts each byte of a valid envelope in turn
// (every single bit, and the whole byte): CRC32C detects any error burst
// shorter than 32 bits, so not one of them may verify.
func TestVerifyRejectsEveryFlip(t *testing.T) {
	valid := validEnvelope(t)
	if _, _, _, err := verify(valid); err != nil {
		t.Fatalf("valid envelope rejected: %v", err)
	}
	masks := []byte{0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff}
	b := bytes.Clone(valid)
	for i := range b {
		for _, m := range masks {
			b[i] ^= m
			if _, _, _, err := verify(b); err == nil {
				t.Errorf("byte %d ^ %#02x: accepted", i, m)
			} else if !errors.Is(err, ErrCorrupt) {
				t.Errorf("byte %d ^ %#02x: %v does not wrap ErrCorrupt", i, m, err)
			}
			b[i] ^= m
		}
	}
	if !bytes.Equal(b, valid) {
		t.Fatal("test bug: envelope not restored")
	}
}

func TestDecode(t *testing.T) {
	valid := validEnvelope(t)
	unknown := appendEnvelope(nil, 99, 7, []byte(`{"ts":1}`))
	cases := []struct {
		name    string
		in      []byte
		idx     uint64
		want    string // error text; "" for success
		corrupt bool   // the error wraps ErrCorrupt
	}{
		{"valid", valid, 7, "", false},
		{"stored one later", valid, 8, "entry 8: corrupt journal entry: sequence number 7", true},
		{"stored one earlier", valid, 6, "entry 6: corrupt journal entry: sequence number 7", true},
		{"unknown type", unknown, 7, "entry 7: unknown event type 99 (written by a newer picoflow?)", false},
		{"type zero", appendEnvelope(nil, 0, 7, []byte(`{}`)), 7, "entry 7: unknown event type 0", false},
		{"payload not json", appendEnvelope(nil, TaskStarted, 7, []byte(`{"ts":`)), 7, "entry 7: decode task_started payload", false},
		{"payload wrong shape", appendEnvelope(nil, TaskStarted, 7, []byte(`{"ts":"soon"}`)), 7, "entry 7: decode task_started payload", false},
		{"crc", valid[:len(valid)-1], 7, "entry 7: corrupt journal entry: payload length", true},
		{"empty payload object", appendEnvelope(nil, RunFinished, 7, []byte(`{}`)), 7, "", false},
		{"unknown payload field", appendEnvelope(nil, RunFinished, 7, []byte(`{"ts":5,"added_later":true}`)), 7, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := decode(tc.in, tc.idx)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				if e.Seq != tc.idx {
					t.Errorf("Seq = %d, want %d", e.Seq, tc.idx)
				}
				return
			}
			if err == nil {
				t.Fatalf("decoded %s, want error %q", describe(e), tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want %q", err, tc.want)
			}
			if errors.Is(err, ErrCorrupt) != tc.corrupt {
				t.Errorf("errors.Is(%v, ErrCorrupt) = %v, want %v", err, !tc.corrupt, tc.corrupt)
			}
		})
	}

	e, err := decode(valid, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := goldenEvent()
	want.Seq = 7
	if describe(e) != describe(want) {
		t.Errorf("decoded\n %s\nwant\n %s", describe(e), describe(want))
	}
}

// FuzzDecode feeds arbitrary bytes to the envelope decoder. It must never
// panic; whatever verifies must re-encode to the same bytes, and whatever
// decodes must survive an encode/decode round trip unchanged.
func FuzzDecode(f *testing.F) {
	for i := range 60 {
		e := testEvent(i, i*3)
		p, err := json.Marshal(e)
		if err != nil {
			f.Fatal(err)
		}
		env := appendEnvelope(nil, e.Type, uint64(i+1), p)
		if i%10 == 0 {
			f.Add(env, uint64(i+1))
			f.Add(env[:len(env)/2], uint64(i+1))
			f.Add(env, uint64(i))
		}
	}
	p, _ := json.Marshal(goldenEvent())
	f.Add(appendEnvelope(nil, RunStarted, 1, p), uint64(1))
	f.Add(appendEnvelope(nil, typeEnd, 1, []byte(`{}`)), uint64(1))
	f.Add(appendEnvelope(nil, TaskProcess, 1<<63, []byte(`{"pgid":12,"params":{}}`)), uint64(1<<63))
	f.Add(appendEnvelope(nil, TaskFinished, 3, []byte(`{"tail":"\xff\xfe","outputs":null}`)), uint64(3))
	f.Add(appendEnvelope(nil, TaskFinished, 3, []byte(`not json`)), uint64(3))
	f.Add([]byte{}, uint64(0))
	f.Add(make([]byte, headerSize), uint64(0))
	f.Add(make([]byte, 4096), uint64(1))
	f.Add([]byte("\x01\x00\x01\x00garbage garbage garbage"), uint64(1))
	f.Add(bytes.Repeat([]byte{0xff}, 40), uint64(1))

	f.Fuzz(func(t *testing.T, b []byte, idx uint64) {
		checkDecode(t, b, idx)
		// The CRC keeps random bytes from verifying; to reach the payload
		// decoder, also take them as the payload of a valid envelope.
		env := appendEnvelope(nil, Type(idx%uint64(typeEnd+1)), idx, b)
		if _, _, _, err := verify(env); err != nil {
			t.Fatalf("fresh envelope rejected: %v", err)
		}
		checkDecode(t, env, idx)
	})
}

// checkDecode checks the decoding of one entry stored at idx.
func checkDecode(t *testing.T, b []byte, idx uint64) {
	t.Helper()
	typ, seq, payload, err := verify(b)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("verify error %v does not wrap ErrCorrupt", err)
		}
		if e, err := decode(b, idx); err == nil {
			t.Fatalf("decode accepted what verify rejects: %s", describe(e))
		}
		return
	}
	if again := appendEnvelope(nil, typ, seq, payload); !bytes.Equal(again, b) {
		t.Fatalf("re-encoding changed the envelope:\n%x\n%x", b, again)
	}
	if idx != seq {
		if _, err := decode(b, idx); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("decode at index %d of an entry numbered %d: %v, want ErrCorrupt", idx, seq, err)
		}
	}
	e, err := decode(b, seq)
	if err != nil {
		if typ.Known() && json.Valid(payload) && errors.Is(err, ErrCorrupt) {
			t.Fatalf("verified entry reported corrupt: %v", err)
		}
		return // unknown type or a payload that is not an Event
	}
	if e.Seq != seq || e.Type != typ {
		t.Fatalf("decoded seq %d type %d, envelope says %d %d", e.Seq, e.Type, seq, typ)
	}
	p1, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := decode(appendEnvelope(nil, e.Type, e.Seq, p1), e.Seq)
	if err != nil {
		t.Fatalf("re-encoded event does not decode: %v", err)
	}
	if describe(e2) != describe(e) {
		t.Fatalf("round trip changed the event:\n %s\n %s", describe(e), describe(e2))
	}
}

// TestNewEntryIsMarshal: the entry Append seals in place holds the bytes
// json.Marshal gives for the event (what every journal so far holds), HTML
// escapes and a big definition included, and seals to appendEnvelope's.
func TestNewEntryIsMarshal(t *testing.T) {
	cases := []struct {
		name string
		ev   *Event
	}{
		{"task", &Event{Type: TaskFinished, Time: 1, Run: "r", Task: "a", Status: StatusFailed, Error: "exit 1 <&>", Tail: "line\n\u2028"}},
		{"definition", &Event{Type: RunStarted, Time: 2, Run: "r", Workflow: "w",
			Definition: strings.Repeat("tasks:\n  - name: \"x\" # <b>\n", 50000), Params: map[string]string{"K": "v"}}},
		// Big definitions are escaped in pieces (newBigEntry): runes of
		// 2, 3 and 4 bytes, invalid bytes, control characters, U+2028 and
		// HTML characters across every piece boundary.
		{"definition-runes", &Event{Type: RunStarted, Time: 3, Run: "r\"definition\":\"\u0000\"", Workflow: "w",
			DefHash: "h", Source: "/x.yaml", Trigger: "manual", FireTime: 9, RerunOf: "p", Params: map[string]string{"A": "<\x00>"},
			Definition: bigDefinitionText()}},
		{"definition-smallest-big", &Event{Type: RunStarted, Time: 4, Run: "r", Definition: strings.Repeat("é", bigDefinition/2)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			entry, err := newEntry(tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(entry[headerSize:], want) || cap(entry) > len(entry)+1 {
				t.Fatalf("payload differs from json.Marshal (len %d vs %d, cap %d)", len(entry)-headerSize, len(want), cap(entry))
			}
			sealEnvelope(entry, tc.ev.Type, 7)
			if env := appendEnvelope(nil, tc.ev.Type, 7, want); !bytes.Equal(entry, env) {
				t.Fatal("sealed entry differs from appendEnvelope's")
			}
		})
	}
}

// bigDefinitionText is a definition of ~1 MiB in which every kind of byte
// json.Marshal escapes or replaces sits at each definitionChunk boundary.
func bigDefinitionText() string {
	odd := []string{"é", "€", "𝄞", "\xff", "\xe2\x82", "\x00\x1f\t\n", "\u2028\u2029", "<>&", `"\\`}
	var b strings.Builder
	for b.Len() < 1<<20 {
		for _, o := range odd {
			for k := range len(o) + 1 { // o starts up to len(o) bytes before a boundary
				pad := definitionChunk - b.Len()%definitionChunk - k
				if pad < 0 {
					pad += definitionChunk
				}
				b.WriteString(strings.Repeat("a", pad))
				b.WriteString(o)
			}
		}
	}
	return b.String()
}
