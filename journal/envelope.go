package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Envelope layout, little-endian (see doc.go):
//
//	offset size field
//	0      1    version (1)
//	1      1    flags (0, reserved)
//	2      2    event type
//	4      8    sequence number (== the wal index it is stored at)
//	12     4    payload length
//	16     4    CRC32C of bytes [0,16) followed by the payload
//	20     n    payload (JSON)
const (
	envelopeVersion = 1
	headerSize      = 20
	// MaxPayload bounds one event; a larger length field is treated as damage.
	MaxPayload = 64 << 20
)

// ErrCorrupt is returned (wrapped) for an entry whose envelope does not verify.
var ErrCorrupt = errors.New("corrupt journal entry")

// appendEnvelope appends the envelope of an event to dst.
func appendEnvelope(dst []byte, t Type, seq uint64, payload []byte) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, headerSize)...)
	dst = append(dst, payload...)
	sealEnvelope(dst[n:], t, seq)
	return dst
}

// sealEnvelope writes the header of entry, whose payload follows
// headerSize bytes left for it (newEntry).
func sealEnvelope(entry []byte, t Type, seq uint64) {
	h, payload := entry[:headerSize], entry[headerSize:]
	h[0], h[1] = envelopeVersion, 0
	binary.LittleEndian.PutUint16(h[2:], uint16(t))
	binary.LittleEndian.PutUint64(h[4:], seq)
	binary.LittleEndian.PutUint32(h[12:], uint32(len(payload)))
	crc := crc32c(crc32c(0, h[:16]), payload)
	binary.LittleEndian.PutUint32(h[16:], crc)
}

// newEntry returns an entry for e: headerSize bytes for sealEnvelope, then
// its payload, the bytes json.Marshal gives (appendEvent), in one
// allocation of the right size: a copy per step (payload, envelope, batch,
// wal) of a big definition is what a big DAG's run used to peak on.
func newEntry(e *Event) ([]byte, error) {
	if len(e.Definition) >= bigDefinition {
		return newBigEntry(e)
	}
	var scratch [1024]byte // on the stack: a task's events fit
	p := appendEvent(scratch[:0], e)
	b := make([]byte, headerSize+len(p))
	copy(b[headerSize:], p)
	return b, nil
}

// verify checks the framing and checksum of an envelope and returns its
// type, sequence number and payload without decoding the payload.
func verify(b []byte) (Type, uint64, []byte, error) {
	if len(b) < headerSize {
		return 0, 0, nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrCorrupt, len(b), headerSize)
	}
	if b[0] != envelopeVersion {
		return 0, 0, nil, fmt.Errorf("%w: envelope version %d, want %d", ErrCorrupt, b[0], envelopeVersion)
	}
	n := binary.LittleEndian.Uint32(b[12:])
	if int(n) != len(b)-headerSize {
		return 0, 0, nil, fmt.Errorf("%w: payload length %d, entry holds %d", ErrCorrupt, n, len(b)-headerSize)
	}
	want := binary.LittleEndian.Uint32(b[16:])
	got := crc32c(crc32c(0, b[:16]), b[headerSize:])
	if got != want {
		return 0, 0, nil, fmt.Errorf("%w: crc32c %08x, want %08x", ErrCorrupt, got, want)
	}
	return Type(binary.LittleEndian.Uint16(b[2:])), binary.LittleEndian.Uint64(b[4:]), b[headerSize:], nil
}

// decode verifies an envelope stored at wal index idx and decodes it.
func decode(b []byte, idx uint64) (*Event, error) {
	var en Entry
	if err := en.reset(b, idx); err != nil {
		return nil, err
	}
	return en.event(Whole)
}
