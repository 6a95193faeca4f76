package journal

import (
	"hash/crc32"
	"sync"
	"sync/atomic"
)

// The envelope's checksum is CRC32C (Castagnoli). hash/crc32 computes it
// with SSE4.2 on amd64, but first builds two tables for that, on first
// use of its Castagnoli table: 0.2–0.3 ms, which every command paid at
// start-up when the table was made in a package variable, and which a
// process that checksums a few KiB (a one-task run: its journal's tail)
// spends on tables it hardly uses. So the first byteWiseBudget bytes a
// process checksums go through a byte-at-a-time table of the same
// polynomial (5–6 ns a byte on the 2-core bench machine,
// BenchmarkCRC32CByteWise; a 1 KiB table built in microseconds); after
// that, hash/crc32's own. Both compute the same function
// (TestCRC32CPaths), so a checksum may mix them. (On arm64 hash/crc32
// needs no tables; there the byte-wise start costs at most ~0.1 ms.)

// byteWiseBudget is about what the byte-wise table checksums in the time
// hash/crc32 takes to build its tables: past it, the fast path pays off
// (at worst a process spends twice the best choice's time, as in renting
// skis until their price is paid).
const byteWiseBudget = 32 << 10

var (
	byteWiseBytes atomic.Int64 // bytes checksummed so far
	byteWiseTable = sync.OnceValue(func() *crc32.Table {
		// What crc32.MakeTable does for a polynomial it has no special
		// code for (MakeTable(crc32.Castagnoli) builds the fast tables).
		t := new(crc32.Table)
		for i := range t {
			crc := uint32(i)
			for range 8 {
				if crc&1 == 1 {
					crc = crc>>1 ^ crc32.Castagnoli
				} else {
					crc >>= 1
				}
			}
			t[i] = crc
		}
		return t
	})
	castagnoliTable = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })
)

// crc32c returns the CRC32C of p continuing crc (0 to start).
func crc32c(crc uint32, p []byte) uint32 {
	if byteWiseBytes.Load() < byteWiseBudget && byteWiseBytes.Add(int64(len(p))) <= byteWiseBudget {
		return crc32.Update(crc, byteWiseTable(), p)
	}
	return crc32.Update(crc, castagnoliTable(), p)
}
