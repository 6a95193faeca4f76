package journal

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Decoding says how much of an entry a scan decodes (ScanOptions.Select).
type Decoding uint8

const (
	// Whole decodes every field.
	Whole Decoding = iota
	// Lean may leave out the big fields, Definition, LogPath, Error, Tail
	// and Outputs (they are set when the payload is in a shape the fast
	// path does not read). The rest is exactly as Whole has it. The scan
	// may deliver the same *Event again for the next lean entry: the
	// callback may keep its fields, not the pointer. A replay decodes the
	// events of a finished run lean: a summary keeps none of the big
	// fields (engine.State.Detail), and a long history then costs no
	// garbage per event.
	Lean
	// Skip delivers nothing: the entry is verified and passed over.
	Skip
	// RunOnly delivers an event with its Seq, Type and Run only (the same
	// *Event again, as Lean; only those three are set each time, and the
	// callback must not change the others). The run is read from the start of the
	// payload as json.Marshal writes it ({"ts":N,"run":"..."), and the rest
	// of the payload is not read: a payload that names its run a second
	// time further on, which no release writes, is not noticed. A payload
	// that does not start so is decoded lean. A fold reads the task events
	// of a run that ends this way: a summary keeps none of them.
	RunOnly

	// noDefinition is Whole but for Definition (ScanOptions.NoDefinition).
	noDefinition
)

// Entry is a verified entry before its payload is decoded: what
// ScanOptions.Select is asked about. It is only valid during the call.
type Entry struct {
	Seq  uint64
	Type Type

	payload []byte
	scratch *Event // a scanner's: what entries are parsed into, and lean ones delivered in
	only    *Event // a scanner's: what RunOnly entries are delivered in
	e       *Event // parsed fast (ok) or decoded whole by encoding/json
	ps      parsed
	ok      bool   // e was parsed fast; the big fields are in ps
	err     error  // the payload does not decode
	peek    string // the run read from the start of the payload (peeked)
	peeked  bool
}

// reset verifies envelope b, stored at wal index idx, into en.
func (en *Entry) reset(b []byte, idx uint64) error {
	t, seq, payload, err := verify(b)
	if err != nil {
		return fmt.Errorf("entry %d: %w", idx, err)
	}
	if seq != idx {
		return fmt.Errorf("entry %d: %w: sequence number %d", idx, ErrCorrupt, seq)
	}
	return en.set(t, seq, payload)
}

// set makes en the entry seq of type t holding payload.
func (en *Entry) set(t Type, seq uint64, payload []byte) error {
	if !t.Known() {
		return fmt.Errorf("entry %d: unknown event type %d (written by a newer picoflow?)", seq, uint16(t))
	}
	// Field by field: a scan resets its entry for every record, and a copy
	// of a whole Entry (parsed.big is five slices) costs write barriers
	// while the collector runs. parse clears parsed.big, which nothing
	// reads before it.
	en.Seq, en.Type, en.payload = seq, t, payload
	en.e, en.ok, en.err, en.peek, en.peeked = nil, false, nil, "", false
	return nil
}

// resetRecord is reset of a record a walk of its segment verified
// (readRecord: its checksum and its sequence number): its checksum is not
// computed a second time.
func (en *Entry) resetRecord(r record) error {
	return en.set(recordType(r), r.seq, r.env[headerSize:])
}

// Run returns the run the entry belongs to: the one the start of its
// payload names when it starts as json.Marshal writes (see RunOnly), else
// the one decoding finds ("" when none, or when the payload does not
// decode: decoding it then says why).
func (en *Entry) Run() string {
	if en.peeked {
		return en.peek
	}
	if en.e == nil && en.err == nil {
		if run, ok := peekRun(en.payload); ok {
			en.peek, en.peeked = en.ps.str(run), true
			return en.peek
		}
	}
	en.parse()
	if en.e == nil {
		return ""
	}
	return en.e.Run
}

// runBytes returns the run the start of the payload names (see RunOnly),
// not copied; false when it does not start so.
func (en *Entry) runBytes() ([]byte, bool) { return peekRun(en.payload) }

// setRun makes run, which the start of the payload names (runBytes), the
// entry's run, and the string its decoding hands out for it.
func (en *Entry) setRun(run string) {
	en.peek, en.peeked = run, true
	if en.ps.strs != nil {
		en.ps.strs.put(run)
	}
}

// parse decodes the payload once: fast when it can, else whole with
// encoding/json.
func (en *Entry) parse() {
	if en.e != nil || en.err != nil {
		return
	}
	e := en.scratch
	if e == nil {
		e = &Event{}
	} else {
		*e = Event{}
	}
	en.ps.big = [len(bigOrder)][]byte{}
	if parseFast(en.payload, e, &en.ps) {
		en.e, en.ok = e, true
		return
	}
	en.jsonDecode()
}

// jsonDecode decodes the payload with encoding/json: the reference the
// fast path must agree with.
func (en *Entry) jsonDecode() {
	e := &Event{}
	if err := json.Unmarshal(en.payload, e); err != nil {
		en.e, en.err = nil, fmt.Errorf("entry %d: decode %s payload: %w", en.Seq, en.Type, err)
		return
	}
	en.e, en.ok = e, false
}

// event returns the entry's event decoded as d asks (Whole or Lean).
func (en *Entry) event(d Decoding) (*Event, error) {
	if d == RunOnly {
		if en.Run(); en.peeked {
			return en.runOnly(), nil
		}
		d = Lean
	}
	en.parse()
	if en.err != nil {
		return nil, en.err
	}
	e := en.e
	if d == Lean && en.peeked && e.Run != en.peek {
		d = Whole // asked on the run the payload's start names, not the one it holds
	}
	if d == Whole || d == noDefinition {
		if e == en.scratch { // the caller's to keep
			c := *e
			e = &c
		}
		if d == noDefinition {
			en.ps.big[bigSlot(fDefinition)] = nil
		}
		if en.ok && !fill(e, &en.ps) {
			if en.jsonDecode(); en.err != nil {
				return nil, en.err
			}
			e = en.e
		}
	}
	if d == noDefinition {
		e.Definition = "" // decoded by encoding/json, which does not leave it out
	}
	e.Seq, e.Type = en.Seq, en.Type
	en.e, en.ok = nil, false // delivered: not to be changed again
	return e, nil
}

// runOnly returns the event (a scanner's own for RunOnly entries, else a
// new one) holding the entry's sequence number, type and peeked run: the
// scanner's holds nothing else, and only these three are set again.
func (en *Entry) runOnly() *Event {
	e := en.only
	if e == nil {
		e = &Event{}
	}
	e.Seq, e.Type, e.Run = en.Seq, en.Type, en.peek
	return e
}

// reuse makes en a scanner's: entries are parsed into one scratch event
// (delivered as is when Lean), RunOnly ones delivered in another, their
// strings interned.
func (en *Entry) reuse() { en.scratch, en.only, en.ps.strs = &Event{}, &Event{}, &interner{} }

// decode verifies record r into en and decodes it as a scan's options
// ask (nil: skipped): types (nil: all), sel (nil: Whole), noDef.
func (en *Entry) decode(r record, types []Type, sel func(*Entry) Decoding, noDef func(string) bool) (*Event, error) {
	if err := en.resetRecord(r); err != nil {
		return nil, err
	}
	if types != nil && !slices.Contains(types, en.Type) {
		return nil, nil
	}
	return en.decodeAs(sel, noDef)
}

// decodeAs is decode of the entry en holds (reset).
func (en *Entry) decodeAs(sel func(*Entry) Decoding, noDef func(string) bool) (*Event, error) {
	d := Whole
	if sel != nil {
		d = sel(en)
	}
	if d == Whole && en.Type == RunStarted && noDef != nil && noDef(en.Run()) {
		d = noDefinition
	}
	if d == Skip {
		return nil, nil
	}
	return en.event(d)
}
