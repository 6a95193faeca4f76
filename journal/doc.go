// Package journal is PicoFlow's write-ahead log of events, the single source
// of truth for every run. It owns the on-disk format, its integrity checks
// and its crash repair. It must never import another PicoFlow package, never
// interpret events (that is the engine's reducer), and never hold state that
// is not derivable from the files in its directory.
//
// # Storage
//
// Entries are stored with github.com/tidwall/wal (binary format): segment
// files named by the 20-digit index of its first entry, each record a
// uvarint length followed by that many bytes. The wal has no checksum, reads
// zero bytes as empty entries, fails to open on a cut-off record and never
// fsyncs its directory, so every record is our own envelope and this package
// adds repair, verification and directory fsyncs around it. Writing goes
// through the wal's API, but for an entry bigger than a segment appended
// alone (a big definition), which is written in a segment file of its own
// as the wal would leave it, to keep it out of the wal's buffers
// (bigentry.go); reading without the lock (Scan, Verify),
// checking before wal.Open (Repair) and Salvage read the files themselves,
// relying on the file names and framing above. ARCHITECTURE.md lists these
// assumptions and wal_assumptions_test.go pins them to the version in
// go.mod.
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
// length check, a flipped bit fails the CRC (CRC32C detects every single-bit
// error), and an entry written at the wrong index fails the sequence check.
//
// # Durability
//
// Append returns after the entries are written and fsynced; appends queued
// by other goroutines meanwhile are committed in the same write and fsync
// (group commit). AppendLazy writes without fsync: the entry becomes durable
// with the next Append, Sync or Close. After each fsync the directory is
// listed, and fsynced too when its names changed (the wal started a
// segment file): the wal's API promises no rule for when it does. After a
// write error (e.g. ENOSPC, named with the file: "write
// DIR/00000000000000000001: no space left on device") the journal refuses
// further writes with that error wrapped; reopening, once the cause is
// fixed, repairs the torn tail the failed write left.
//
// # Checking a segment: records, torn tails and damage
//
// Open, Scan, Verify and Salvage share one checker. It reads a segment
// record by record; a record is good when it is framed within the file and
// its envelope verifies at the index it is stored at. At a bad record it
// resynchronises: it searches forward, byte by byte, for the next offset
// where an envelope verifies (version 1, flags 0, the length fits, the CRC
// matches) with a sequence number at least the one expected. It searches
// envelopes, not frames, because the length prefix may be the damaged
// byte: a flipped prefix loses no entry. What lies between is a bad
// region. A bad region is
//
//   - a torn tail when it is in the last segment, no verified envelope
//     follows it, and it looks unfinished: its length prefix or its frame
//     runs past the end of the file (a cut write), it is empty (zero bytes
//     a power loss left), or its last byte is zero (the end of the frame was
//     never written; a payload is JSON and ends in '}');
//   - damage otherwise: a verified record follows it, or it is in an older
//     segment (the wal fsyncs a segment before it starts the next, so an
//     older segment is never torn), or it is a whole record that fails its
//     checks (written whole, it may have been fsynced: a flipped bit in the
//     last entry is damage, not a torn write).
//
// # Recovery (Open)
//
//  1. Take an exclusive flock on DIR/LOCK (a second writer gets LockedError
//     naming the holder's PID), and list DIR once.
//  2. Finish or roll back an interrupted Salvage (see below), when the
//     listing has salvage.new or salvage.ready.
//  3. Check every segment listed, reading each once. Damage: change
//     nothing and fail with a *DamageError (errors.Is(err, ErrDamaged))
//     naming the file, the byte offset and the entry. A torn tail: copy the
//     last segment to DIR/damaged/NAME.UNIXNANO (fsynced), truncate it
//     where the torn record starts, fsync it and the directory. Every entry
//     that verifies is kept. With Options.Replay, every entry is decoded
//     and handed to it as it is checked, up to the first damage (a writer
//     that folds its journal into a state reads it once). With
//     Options.Finished too, a read-ahead reads and verifies each segment
//     first, noting the runs that finish, and the check takes the segment
//     it keeps from it (ahead.go); a segment whose read-ahead met a bad
//     region is walked again as without it.
//  4. Open the wal (which also completes or rolls back its own interrupted
//     front/back truncations), then verify the last entry again. Unless the
//     wal had to create the first segment or finish a truncation, the names
//     in DIR are those listed in step 1.
//  5. The next sequence number is LastIndex()+1.
//
// # Readers
//
// Readers in other processes use Scan, which never writes, creates or locks
// anything (it works on a full disk and a read-only file system) and treats
// a torn tail of the last segment as the end of the journal (the writer may
// be mid-record). Damage is a *DamageError, unless ScanOptions.OnDamage is
// set: then every entry that verifies is delivered, before and after the
// damage, and each damaged region is reported to OnDamage in order. When a
// concurrent TruncateFront removes or moves segment files under it, Scan
// lists the directory again and goes on from the next entry it wants; a gap
// between segment files that stays is damage. The writer's own ReadFrom
// reads up to the last entry it has finished writing, so it never mistakes
// an append in progress for damage. Verify reads like Scan and lists every
// damaged region and the torn tail, if any.
//
// # Salvage
//
// Salvage (under the lock) keeps every entry that verifies:
//
//  1. Finish or roll back an earlier interrupted salvage.
//  2. Copy every file of the journal to DIR/damaged/salvage-UNIXNANO/
//     (fsynced).
//  3. Write the entries that verify (and that SalvageOptions.Keep keeps)
//     to a new wal in DIR/salvage.new/, renumbered 1..n so that seq == wal
//     index again, then the events SalvageOptions.Finish returns; fsync
//     every file, write salvage.new/MANIFEST listing them, fsync it and the
//     directory.
//  4. Commit: rename salvage.new to salvage.ready and fsync DIR. Before
//     this point a crash leaves the old journal (step 2 of Open removes
//     salvage.new); after it, the new one: Scan reads the files the
//     manifest lists (from salvage.ready or already moved), and Open
//     finishes the switch.
//  5. Switch: rename each listed file into DIR (replacing an old segment
//     of the same name), remove the old segments and wal temp files that
//     are not listed, fsync DIR, remove salvage.ready, fsync DIR. Each step
//     can be repeated after a crash.
//
// The report lists the gaps, as the new sequence numbers of the entries
// kept around each, so that the caller can mark runs whose events may be
// missing. Sequence numbers change: a projection keyed on them must be
// rebuilt (the projector notices by its identity check).
package journal
