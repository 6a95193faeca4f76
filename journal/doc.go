// Package journal is PicoFlow's write-ahead log of events, the single source
// of truth for every run. It owns the on-disk format, its integrity checks
// and its crash repair. It must never import another PicoFlow package, never
// interpret events (that is the engine's reducer), and never hold state that
// is not derivable from the files in its directory.
//
// # Storage
//
// Entries are stored with github.com/tidwall/wal (binary format): segment
// files named by the 20-digit index of their first entry, each record a
// uvarint length followed by that many bytes. The wal has no checksum, reads
// zero bytes as empty entries, fails to open on a cut-off record and never
// fsyncs its directory, so every record is our own envelope and this package
// adds repair, verification and directory fsyncs around it.
//
// # Envelope (little-endian)
//
//	offset size field
//	0      1    version, 1
//	1      1    flags, 0 (reserved)
//	2      2    event type (Type, an append-only enum; 0 is never valid)
//	4      8    sequence number, equal to the wal index the entry is stored at
//	12     4    payload length n
//	16     4    CRC32C (Castagnoli) of bytes [0,16) followed by the payload
//	20     n    payload: the Event as JSON
//
// A zero-filled region fails the version check, a torn record fails the
// length check, a flipped bit fails the CRC, and an entry written at the
// wrong index fails the sequence check.
//
// # Durability
//
// Append returns after the entries are written and fsynced; appends queued
// by other goroutines meanwhile are committed in the same write and fsync
// (group commit). AppendLazy writes without fsync: the entry becomes durable
// with the next Append, Sync or Close. When a write makes the wal start a
// new segment, the directory is fsynced too. After a write error the
// journal refuses further appends: reopening repairs it.
//
// # Recovery (Open)
//
//  1. Take an exclusive flock on DIR/LOCK (a second writer gets LockedError
//     naming the holder's PID).
//  2. Repair: read the last segment record by record; at the first record
//     that is torn or whose envelope does not verify, copy the whole file to
//     DIR/damaged/NAME.UNIXNANO (fsynced), truncate the segment there, fsync
//     it and the directory. Only the unfinished tail is dropped: every entry
//     that was fsynced before the crash verifies and is kept.
//  3. Open the wal (which also completes or rolls back its own interrupted
//     front/back truncations), then verify the last entry again.
//  4. The next sequence number is LastIndex()+1.
//
// Readers in other processes use Scan, which never writes or locks and
// treats an unreadable tail of the last segment as the end of the journal
// (the writer may be mid-record). When a concurrent TruncateFront removes or
// moves segment files under it, Scan lists the directory again and goes on
// from the next entry it wants; a gap between segment files that stays is
// an error. The writer's own ReadFrom reads up to the last entry it has
// finished writing, so it never mistakes an append in progress for damage.
package journal
