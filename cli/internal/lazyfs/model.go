//go:build linux

package lazyfs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
)

// Fault says what a power cut keeps of a file's pending writes.
type Fault int

const (
	Clear   Fault = iota // every pending write is lost
	TornSeq              // a random prefix of the pending writes is kept
	TornOp               // all pending writes but the last, and a random prefix of the last
)

var faultNames = []string{"clear", "torn-seq", "torn-op"}

func (f Fault) String() string {
	if int(f) < len(faultNames) {
		return faultNames[f]
	}
	return fmt.Sprintf("fault(%d)", int(f))
}

// entry is one durable directory entry.
type entry struct {
	ino  uint64
	mode uint32 // st_mode: type and permissions
	link string // symlink target
}

// op is one pending change of a file's content: a write, or a truncate
// when trunc is set.
type op struct {
	off   int64
	data  []byte
	trunc bool
}

func (o op) apply(b []byte) []byte {
	if o.trunc {
		if o.off <= int64(len(b)) {
			return b[:o.off]
		}
		return append(b, make([]byte, o.off-int64(len(b)))...)
	}
	end := o.off + int64(len(o.data))
	if end > int64(len(b)) {
		b = append(b, make([]byte, end-int64(len(b)))...)
	}
	copy(b[o.off:], o.data)
	return b
}

// oPath is Linux's O_PATH, which package syscall does not name.
const oPath = 0x200000

// model is the durable state beside the live backing directory.
type model struct {
	mu      sync.Mutex
	dir     string // the backing directory
	root    uint64 // its inode
	dirs    map[uint64]map[string]entry
	files   map[uint64][]byte
	pending map[uint64][]op
	pins    []int // O_PATH descriptors of removed inodes (rule 5)
	cut     bool
	stats   Stats
	// armed counts down the fsyncs until an automatic cut (0: none);
	// fired is closed when it happens.
	armed int
	fired chan struct{}
	hold  gate // fsyncs held by a test (HoldSyncs)
}

// Stats counts what the file system saw since it was mounted.
type Stats struct {
	FileSyncs, DirSyncs, Writes, Truncates int
	// Of the last power cut: files that had writes pending (lost whole or
	// in part), and the pending bytes that were not kept.
	CutFiles, CutBytes int
}

// load makes the backing directory's current state the durable state.
func load(dir string) (*model, error) {
	m := &model{dir: dir, dirs: map[uint64]map[string]entry{}, files: map[uint64][]byte{}, pending: map[uint64][]op{}}
	var st syscall.Stat_t
	if err := syscall.Lstat(dir, &st); err != nil {
		return nil, fmt.Errorf("lazyfs: stat %s: %w", dir, err)
	}
	m.root = st.Ino
	if err := m.loadDir(dir, st.Ino); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *model) loadDir(path string, ino uint64) error {
	ents, err := m.readEntries(path)
	if err != nil {
		return err
	}
	m.dirs[ino] = ents
	for name, e := range ents {
		p := filepath.Join(path, name)
		switch e.mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			if err := m.loadDir(p, e.ino); err != nil {
				return err
			}
		case syscall.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("lazyfs: load: %w", err)
			}
			m.files[e.ino] = b
		}
	}
	return nil
}

// readEntries lists a live directory of the backing tree.
func (m *model) readEntries(path string) (map[string]entry, error) {
	names, err := readNames(path)
	if err != nil {
		return nil, err
	}
	ents := make(map[string]entry, len(names))
	for _, name := range names {
		p := filepath.Join(path, name)
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			if errors.Is(err, syscall.ENOENT) {
				continue // removed meanwhile
			}
			return nil, fmt.Errorf("lazyfs: stat %s: %w", p, err)
		}
		e := entry{ino: st.Ino, mode: st.Mode}
		if st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
			if e.link, err = os.Readlink(p); err != nil {
				return nil, fmt.Errorf("lazyfs: %w", err)
			}
		}
		ents[name] = e
	}
	return ents, nil
}

func readNames(path string) ([]string, error) {
	d, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("lazyfs: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("lazyfs: list %s: %w", path, err)
	}
	return names, nil
}

// write records a write the caller is about to make; do runs it under the
// model's lock so that an fsync never sees half of it.
func (m *model) write(ino uint64, off int64, data []byte, do func() (int, error)) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cut {
		return 0, syscall.EIO
	}
	n, err := do()
	if n > 0 {
		m.pending[ino] = append(m.pending[ino], op{off: off, data: slices.Clone(data[:n])})
		m.stats.Writes++
	}
	return n, err
}

// truncate runs do (a truncate to size) and records it.
func (m *model) truncate(ino uint64, size int64, do func() error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cut {
		return syscall.EIO
	}
	if err := do(); err != nil {
		return err
	}
	m.pending[ino] = append(m.pending[ino], op{off: size, trunc: true})
	m.stats.Truncates++
	return nil
}

// syncFile makes the content behind fd the durable content of ino.
func (m *model) syncFile(ino uint64, fd int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cut {
		return syscall.EIO
	}
	// The descriptor may be write-only: read through a new one (this works
	// for an unlinked file too).
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return err
	}
	m.files[ino] = b
	delete(m.pending, ino)
	m.stats.FileSyncs++
	m.countdown()
	return nil
}

// countdown cuts the power after the armed number of fsyncs: the fsync
// that reaches zero succeeds, everything after it fails.
func (m *model) countdown() {
	if m.armed == 0 {
		return
	}
	if m.armed--; m.armed == 0 {
		m.cut = true
		close(m.fired)
	}
}

// syncDir makes the live entries of the directory at path (inode ino) its
// durable entries.
func (m *model) syncDir(ino uint64, path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cut {
		return syscall.EIO
	}
	ents, err := m.readEntries(path)
	if err != nil {
		return err
	}
	m.dirs[ino] = ents
	m.stats.DirSyncs++
	m.countdown()
	return nil
}

// pin keeps the inode at path allocated (rule 5) before it is removed or
// renamed over. A missing path is not an error: the operation will fail.
func (m *model) pin(path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cut {
		return syscall.EIO
	}
	fd, err := syscall.Open(path, oPath|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err == nil {
		m.pins = append(m.pins, fd)
	}
	return nil
}

// alive fails with EIO after the cut: the machine is off.
func (m *model) alive() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cut {
		return syscall.EIO
	}
	return nil
}

func (m *model) freeze() {
	m.mu.Lock()
	m.cut = true
	m.mu.Unlock()
}

func (m *model) unpin() {
	for _, fd := range m.pins {
		syscall.Close(fd)
	}
	m.pins = nil
}

// restore rewrites the backing directory to the durable state, with fault
// applied to every file that has pending writes. The live tree is gone
// afterwards; load the model again to continue.
func (m *model) restore(fault Fault, rnd *rand.Rand) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unpin()
	m.stats.CutFiles, m.stats.CutBytes = 0, 0
	names, err := readNames(m.dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := os.RemoveAll(filepath.Join(m.dir, n)); err != nil {
			return fmt.Errorf("lazyfs: restore: %w", err)
		}
	}
	return m.restoreDir(m.dir, m.root, fault, rnd, map[uint64]bool{m.root: true})
}

func (m *model) restoreDir(path string, ino uint64, fault Fault, rnd *rand.Rand, onPath map[uint64]bool) error {
	ents := m.dirs[ino]
	names := make([]string, 0, len(ents))
	for n := range ents {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		e := ents[name]
		p := filepath.Join(path, name)
		perm := os.FileMode(e.mode & 0o7777)
		var err error
		switch e.mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			if onPath[e.ino] {
				continue // a stale entry naming an ancestor: no cycles
			}
			if err = os.Mkdir(p, 0o700); err == nil {
				onPath[e.ino] = true
				err = m.restoreDir(p, e.ino, fault, rnd, onPath)
				delete(onPath, e.ino)
			}
		case syscall.S_IFREG:
			err = os.WriteFile(p, m.content(e.ino, fault, rnd), 0o600)
		case syscall.S_IFLNK:
			err = os.Symlink(e.link, p)
		default: // sockets and FIFOs come back as stale nodes
			err = syscall.Mknod(p, e.mode, 0)
		}
		if err == nil && e.mode&syscall.S_IFMT != syscall.S_IFLNK {
			err = os.Chmod(p, perm)
		}
		if err != nil {
			return fmt.Errorf("lazyfs: restore %s: %w", p, err)
		}
	}
	return nil
}

// content is what a power cut leaves of a file.
func (m *model) content(ino uint64, fault Fault, rnd *rand.Rand) []byte {
	b := slices.Clone(m.files[ino])
	ops := m.pending[ino]
	if len(ops) == 0 {
		return b
	}
	m.stats.CutFiles++
	kept := 0
	switch fault {
	case TornSeq:
		kept = rnd.IntN(len(ops) + 1)
	case TornOp:
		kept = len(ops) - 1
	}
	for _, o := range ops[:kept] {
		b = o.apply(b)
	}
	for _, o := range ops[kept:] {
		m.stats.CutBytes += len(o.data)
	}
	if last := ops[len(ops)-1]; fault == TornOp && !last.trunc {
		last.data = last.data[:rnd.IntN(len(last.data))]
		b = last.apply(b)
		m.stats.CutBytes -= len(last.data)
	}
	return b
}
