//go:build linux

package lazyfs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Unavailable says why this machine cannot mount the file system (not
// root, no /dev/fuse), or returns "".
func Unavailable() string {
	if os.Geteuid() != 0 {
		return "lazyfs needs root to mount FUSE"
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return "lazyfs needs /dev/fuse: " + err.Error()
	}
	f.Close()
	return ""
}

// FS is one mount of a backing directory.
type FS struct {
	backing, mountpoint string
	m                   *model
	server              *fuse.Server
}

// Mount mounts backing at mountpoint; the backing directory's content at
// this moment is the durable state. It needs root (or fusermount3) and
// /dev/fuse.
func Mount(backing, mountpoint string) (*FS, error) {
	m, err := load(backing)
	if err != nil {
		return nil, err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(backing, &st); err != nil {
		return nil, fmt.Errorf("lazyfs: %w", err)
	}
	root := &fs.LoopbackRoot{Path: backing, Dev: st.Dev}
	rn := &node{LoopbackNode: &fs.LoopbackNode{RootData: root}, m: m}
	root.RootNode = rn
	// Entries and attributes come from this mount only: cache them briefly
	// as usual. No direct_io, no writeback cache: every write(2) reaches
	// Write below before it returns, and mmap works.
	sec := time.Second
	server, err := fs.Mount(mountpoint, rn, &fs.Options{
		EntryTimeout: &sec, AttrTimeout: &sec,
		MountOptions: fuse.MountOptions{
			FsName: "lazyfs", Name: "lazyfs", DirectMount: true, DisableXAttrs: true,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("lazyfs: mount %s: %w", mountpoint, err)
	}
	return &FS{backing: backing, mountpoint: mountpoint, m: m, server: server}, nil
}

// Stats returns what the mount has seen so far.
func (f *FS) Stats() Stats {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	return f.m.stats
}

// Cut is the instant the power goes: from now on nothing becomes durable,
// and every write, fsync and namespace change fails with EIO. Kill the
// processes using the mount, then call PowerCut.
func (f *FS) Cut() { f.m.freeze() }

// CutAfterSyncs arms an automatic cut: the power goes right after the
// n-th fsync (of a file or a directory) from now, which is an instant
// that can be chosen exactly. The channel is closed when it went. n = 0
// disarms, and returns nil.
func (f *FS) CutAfterSyncs(n int) <-chan struct{} {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	f.m.armed = n
	if n == 0 || f.m.cut {
		f.m.armed = 0
		return nil
	}
	f.m.fired = make(chan struct{})
	return f.m.fired
}

// PowerCut cuts the power (if Cut was not called yet), unmounts, and
// rewrites the backing directory to the durable state with fault applied.
// Every process using the mount must be gone, or the unmount fails after
// ten seconds. Mount the backing directory again to continue.
func (f *FS) PowerCut(fault Fault, rnd *rand.Rand) error {
	f.Cut()
	if err := f.unmount(); err != nil {
		return err
	}
	return f.m.restore(fault, rnd)
}

// Unmount unmounts cleanly: the live tree stays as it is, as if every
// write had reached the disk before a clean shutdown.
func (f *FS) Unmount() error {
	err := f.unmount()
	f.m.mu.Lock()
	f.m.unpin()
	f.m.mu.Unlock()
	return err
}

func (f *FS) unmount() error {
	if f.server == nil {
		return nil // unmounted already
	}
	var err error
	for range 100 { // a process killed a moment ago may still hold a file
		if err = f.server.Unmount(); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		// Someone still holds a file: detach the mount anyway, so that
		// neither the test nor its cleanup hangs on it.
		if derr := syscall.Unmount(f.mountpoint, syscall.MNT_DETACH); derr != nil {
			return fmt.Errorf("lazyfs: unmount %s: %w", f.mountpoint, errors.Join(err, derr))
		}
		err = fmt.Errorf("lazyfs: unmount %s: busy, detached: %w", f.mountpoint, err)
	}
	f.server.Wait()
	f.server = nil
	return err
}

// node is a loopback node that tells the model about fsyncs, pins removed
// inodes and refuses everything after the cut.
type node struct {
	*fs.LoopbackNode
	m *model
}

var (
	_ fs.NodeWrapChilder     = (*node)(nil)
	_ fs.NodeOpener          = (*node)(nil)
	_ fs.NodeCreater         = (*node)(nil)
	_ fs.NodeOpendirHandler  = (*node)(nil)
	_ fs.NodeSetattrer       = (*node)(nil)
	_ fs.NodeUnlinker        = (*node)(nil)
	_ fs.NodeRmdirer         = (*node)(nil)
	_ fs.NodeRenamer         = (*node)(nil)
	_ fs.NodeMkdirer         = (*node)(nil)
	_ fs.NodeMknoder         = (*node)(nil)
	_ fs.NodeSymlinker       = (*node)(nil)
	_ fs.NodeLinker          = (*node)(nil)
	_ fs.NodeCopyFileRanger  = (*node)(nil)
	_ fs.FileWriter          = (*handle)(nil)
	_ fs.FileWritever        = (*handle)(nil)
	_ fs.FileFsyncer         = (*handle)(nil)
	_ fs.FileAllocater       = (*handle)(nil)
	_ fs.FilePassthroughFder = (*handle)(nil)
	_ fs.FileFsyncdirer      = (*dirHandle)(nil)
	_ fs.FileReaddirenter    = (*dirHandle)(nil)
)

func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*fs.LoopbackNode), m: n.m}
}

// ino is the backing inode number (the loopback node's inode number is
// the backing one when, as here, everything is on one device).
func (n *node) ino() uint64 { return n.StableAttr().Ino }

// path is the node's path in the backing directory.
func (n *node) path() string { return filepath.Join(n.m.dir, n.Path(nil)) }

func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	return fs.ToErrno(err)
}

// wrap turns a loopback file into a handle the model sees.
func (n *node) wrap(fh fs.FileHandle) fs.FileHandle {
	lf, ok := fh.(*fs.LoopbackFile)
	if !ok {
		return fh
	}
	h := &handle{LoopbackFile: lf, m: n.m}
	var st syscall.Stat_t
	if err := syscall.Fstat(h.fd(), &st); err == nil {
		h.ino = st.Ino
	}
	return h
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, ff, e := n.LoopbackNode.Open(ctx, flags)
	if e != 0 {
		return nil, 0, e
	}
	return n.wrap(fh), ff, 0
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if err := n.m.alive(); err != nil {
		return nil, nil, 0, errno(err)
	}
	in, fh, ff, e := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if e != 0 {
		return nil, nil, 0, e
	}
	return in, n.wrap(fh), ff, 0
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, ff, e := n.LoopbackNode.OpendirHandle(ctx, flags)
	if e != 0 {
		return nil, 0, e
	}
	ds, ok := fh.(dirStream)
	if !ok {
		return nil, 0, syscall.ENOTSUP
	}
	return &dirHandle{dirStream: ds, n: n}, ff, 0
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	size, ok := in.GetSize()
	if !ok {
		if err := n.m.alive(); err != nil {
			return errno(err)
		}
		return n.LoopbackNode.Setattr(ctx, f, in, out)
	}
	var e syscall.Errno
	err := n.m.truncate(n.ino(), int64(size), func() error {
		if e = n.LoopbackNode.Setattr(ctx, f, in, out); e != 0 {
			return e
		}
		return nil
	})
	return errno(err)
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if err := n.m.pin(filepath.Join(n.path(), name)); err != nil {
		return errno(err)
	}
	return n.LoopbackNode.Unlink(ctx, name)
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	if err := n.m.pin(filepath.Join(n.path(), name)); err != nil {
		return errno(err)
	}
	return n.LoopbackNode.Rmdir(ctx, name)
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if np, ok := newParent.(*node); ok {
		if err := n.m.pin(filepath.Join(np.path(), newName)); err != nil {
			return errno(err)
		}
	}
	return n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if err := n.m.alive(); err != nil {
		return nil, errno(err)
	}
	return n.LoopbackNode.Mkdir(ctx, name, mode, out)
}

func (n *node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if err := n.m.alive(); err != nil {
		return nil, errno(err)
	}
	return n.LoopbackNode.Mknod(ctx, name, mode, rdev, out)
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if err := n.m.alive(); err != nil {
		return nil, errno(err)
	}
	return n.LoopbackNode.Symlink(ctx, target, name, out)
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if err := n.m.alive(); err != nil {
		return nil, errno(err)
	}
	return n.LoopbackNode.Link(ctx, target, name, out)
}

// CopyFileRange would write behind the model's back: the kernel falls
// back to read and write.
func (n *node) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut uint64, size uint64, flags uint64) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

// handle is an open file: writes are recorded, fsync makes the content
// durable.
type handle struct {
	*fs.LoopbackFile
	ino uint64
	m   *model
}

func (h *handle) fd() int {
	fd, _ := h.LoopbackFile.PassthroughFd()
	return fd
}

// PassthroughFd says no: with kernel passthrough the writes would bypass
// the model.
func (h *handle) PassthroughFd() (int, bool) { return -1, false }

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	n, err := h.m.write(h.ino, off, data, func() (int, error) {
		return syscall.Pwrite(h.fd(), data, off)
	})
	return uint32(max(n, 0)), errno(err)
}

func (h *handle) Writev(ctx context.Context, data [][]byte, off int64) (uint32, syscall.Errno) {
	var all []byte
	for _, d := range data {
		all = append(all, d...)
	}
	return h.Write(ctx, all, off)
}

func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if e := h.m.hold.wait(ctx); e != 0 {
		return e
	}
	return errno(h.m.syncFile(h.ino, h.fd()))
}

// Allocate is refused (callers fall back to writing): its size change
// would not be modelled.
func (h *handle) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	return syscall.EOPNOTSUPP
}

type dirStream interface {
	fs.FileReaddirenter
	fs.FileSeekdirer
	fs.FileReleasedirer
}

// dirHandle is an open directory: fsync makes its entries durable.
type dirHandle struct {
	dirStream
	n *node
}

func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	if e := d.n.m.hold.wait(ctx); e != 0 {
		return e
	}
	p := d.n.path()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return errno(err)
	}
	return errno(d.n.m.syncDir(st.Ino, p))
}
