package daemon

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// trimResident unmaps from this process the clean, read-only file pages
// it has resident: mostly its own code and read-only data, which the
// kernel maps in bulk at start-up (readahead, fault-around, large folios)
// although an idle daemon runs a small part of them. The pages stay in the
// page cache; those used again come back with a minor fault. It returns the
// bytes it unmapped.
//
// Only mappings that are file-backed, not writable, and hold no anonymous
// (copied-on-write) page are touched: MADV_DONTNEED on a relocated RELRO
// page would throw its relocations away.
func trimResident() (int64, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	type mapping struct {
		start, end uintptr
		ok         bool
		rss        int64
	}
	var maps []mapping
	var cur *mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if lo, hi, isRange := strings.Cut(fields[0], "-"); isRange && len(fields) >= 5 && !strings.HasSuffix(fields[0], ":") {
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil {
				cur = nil
				continue
			}
			perms := fields[1]
			path := ""
			if len(fields) >= 6 {
				path = fields[5]
			}
			maps = append(maps, mapping{start: uintptr(start), end: uintptr(end),
				ok: strings.HasPrefix(path, "/") && !strings.Contains(perms, "w") && strings.HasSuffix(perms, "p")})
			cur = &maps[len(maps)-1]
			continue
		}
		if cur == nil || len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "Anonymous:", "Swap:": // copied-on-write pages; Private_Dirty also counts file pages not yet written back
			if kb != 0 {
				cur.ok = false
			}
		case "Rss:":
			cur.rss = kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	var trimmed int64
	for _, m := range maps {
		if !m.ok || m.rss == 0 {
			continue
		}
		// unix.Madvise takes a []byte: a slice over an address read from
		// smaps would be a uintptr-to-Pointer conversion (go vet rejects
		// it, rightly), so the call is made by number, with x/sys's.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, unix.MADV_DONTNEED); errno == 0 {
			trimmed += m.rss
		}
	}
	return trimmed, nil
}
