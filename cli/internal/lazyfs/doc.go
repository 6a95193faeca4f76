// Package lazyfs is a test-only FUSE file system that forgets every write
// that was not fsynced, so that a test can cut the power under a program
// and see what a real disk would have kept. It is modelled on LazyFS
// ("When Amnesia Strikes", VLDB 2024) and is imported only by _test.go
// files: nothing in the picoflow binary links it.
//
// Everything passes through to a backing directory: the live tree a program
// sees is the backing directory, with the kernel's page cache in front of
// the mount as usual (no direct_io, so shared mmap works: SQLite's -shm).
// Beside it the file system keeps the durable state, a separate snapshot:
//
//   - the durable content of every file (by backing inode number);
//   - the durable entry set of every directory (name → inode, type, mode,
//     symlink target);
//   - the pending writes and truncates of every file since its last fsync,
//     in order (only the faults below replay them).
//
// The rules, conservative Linux semantics with no journaling file system's
// ordering promises:
//
//  1. fsync(file) and fdatasync(file) make the file's current content and
//     size durable. They do not make its name durable.
//  2. fsync(dir) makes the directory's current entry set durable: creates,
//     unlinks, renames in and out, mkdir and rmdir of children. A child
//     directory that became durable this way but was never fsynced itself
//     is empty after a power cut; a file that was never fsynced is empty.
//  3. A rename is durable in the target directory only after the target is
//     fsynced, and its removal from the source only after the source is
//     fsynced (so until both are, the file may be in both places or in
//     neither: stricter than ext4, where one journal commit carries both).
//  4. Writes, truncates, creates, unlinks and renames are never durable by
//     themselves, whatever their order.
//  5. Inode numbers are pinned: an inode unlinked or renamed over stays
//     open until the next power cut, so the backing file system cannot
//     reuse its number for another file while a durable entry names it.
//  6. Hard links are restored as separate copies; ownership, times and
//     extended attributes are not modelled; chmod is durable with the
//     directory fsync that records the entry.
//
// A power cut (Cut, then Restore after the mount is gone) freezes the
// durable state (every later write, fsync or namespace change fails with
// EIO), and Restore rewrites the backing directory to the durable state,
// applying one Fault to each file that has pending writes:
//
//   - Clear: the pending writes are lost;
//   - TornSeq: a random prefix of the file's pending writes (and
//     truncates) is kept, in order;
//   - TornOp: every pending write but the last is kept, and of the last
//     only a random prefix of its bytes (a write torn in the middle).
//
// Randomness comes from the caller's *rand.Rand, and the files are visited
// in name order, so a seed reproduces a cut.
package lazyfs
