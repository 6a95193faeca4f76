package journal

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// TestCRC32CPaths: the byte-wise table and hash/crc32's Castagnoli code
// compute the same checksum, from any starting value and split anywhere
// (an envelope's checksum chains its header and its payload, and crc32c
// may switch paths between the two); crc32c agrees with both before and
// after its byte-wise budget is spent.
func TestCRC32CPaths(t *testing.T) {
	fast := crc32.MakeTable(crc32.Castagnoli)
	if got := crc32.Checksum([]byte("123456789"), byteWiseTable()); got != 0xe3069283 {
		t.Fatalf("byte-wise table: check value %08x, want CRC32C's e3069283", got)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 9000)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for _, n := range []int{0, 1, 7, 16, 20, 503, 504, 505, 4031, 4032, 4033, 9000} {
		p := buf[:n]
		want := crc32.Checksum(p, fast)
		if got := crc32.Checksum(p, byteWiseTable()); got != want {
			t.Errorf("%d bytes: byte-wise %08x, hash/crc32 %08x", n, got, want)
		}
		cut := n / 3
		if got := crc32.Update(crc32.Checksum(p[:cut], fast), byteWiseTable(), p[cut:]); got != want {
			t.Errorf("%d bytes, paths mixed at %d: %08x, want %08x", n, cut, got, want)
		}
		if got := crc32c(crc32c(0, p[:cut]), p[cut:]); got != want {
			t.Errorf("%d bytes: crc32c %08x, want %08x", n, got, want)
		}
	}
	for byteWiseBytes.Load() <= byteWiseBudget { // spend the budget
		crc32c(0, buf)
	}
	if got, want := crc32c(0, buf), crc32.Checksum(buf, fast); got != want {
		t.Errorf("after the byte-wise budget: crc32c %08x, want %08x", got, want)
	}
}

// BenchmarkCRC32CByteWise is what the byte-wise path costs per byte (on
// an envelope-sized input), against the time hash/crc32 takes to build
// its Castagnoli tables (byteWiseBudget is about their ratio).
func BenchmarkCRC32CByteWise(b *testing.B) {
	p := make([]byte, 300)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		crc32.Update(0, byteWiseTable(), p)
	}
}
