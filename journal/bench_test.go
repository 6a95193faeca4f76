package journal

import (
	"sync/atomic"
	"testing"
)

// The benchmarks write to b.TempDir(), on the real disk: fsync is most of
// what they measure. Besides ns/op they report, from Stats, the fsyncs and
// the journal bytes (framing included) per operation.

// benchEvents is a ring of realistic task events: starts, process ids and
// results with a few hundred bytes of output.
func benchEvents(n int) []*Event { return testEvents(1, n, 300) }

func openBench(b *testing.B) *Journal {
	b.Helper()
	j, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { j.Close() })
	return j
}

// reportStats reports the journal's work since before, per operation and
// per event.
func reportStats(b *testing.B, j *Journal, before Stats) {
	b.Helper()
	s := j.Stats()
	ops := float64(b.N)
	b.ReportMetric(float64(s.Fsyncs-before.Fsyncs)/ops, "fsyncs/op")
	b.ReportMetric(float64(s.BytesWritten-before.BytesWritten)/ops, "bytes/op")
	if events := s.Entries - before.Entries; events > 0 {
		b.ReportMetric(float64(s.BytesWritten-before.BytesWritten)/float64(events), "bytes/event")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
	}
}

// BenchmarkAppendDurable appends one event per Append, each fsynced.
func BenchmarkAppendDurable(b *testing.B) {
	j := openBench(b)
	evs := benchEvents(100)
	before := j.Stats()
	b.ResetTimer()
	for i := range b.N {
		if err := j.Append(evs[i%len(evs)]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportStats(b, j, before)
}

// BenchmarkAppendBatch10 appends ten events per Append, one fsync for all.
func BenchmarkAppendBatch10(b *testing.B) {
	j := openBench(b)
	evs := benchEvents(100)
	before := j.Stats()
	b.ResetTimer()
	for i := range b.N {
		k := (i * 10) % len(evs)
		if err := j.Append(evs[k : k+10]...); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportStats(b, j, before)
}

// BenchmarkAppendParallel has 4×GOMAXPROCS goroutines each append one
// durable event at a time: group commit shares fsyncs among them.
func BenchmarkAppendParallel(b *testing.B) {
	j := openBench(b)
	before := j.Stats()
	var next atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		evs := benchEvents(100) // each goroutine's own: Append sets Seq
		for i := int(next.Add(1)); pb.Next(); i++ {
			if err := j.Append(evs[i%len(evs)]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportStats(b, j, before)
}

// BenchmarkAppendLazy appends one event per AppendLazy, never fsynced.
func BenchmarkAppendLazy(b *testing.B) {
	j := openBench(b)
	evs := benchEvents(100)
	before := j.Stats()
	b.ResetTimer()
	for i := range b.N {
		if err := j.AppendLazy(evs[i%len(evs)]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportStats(b, j, before)
}

// BenchmarkScan10000 is recovery after a restart: Repair, Open and a full
// verified read of a journal of 10,000 task events.
func BenchmarkScan10000(b *testing.B) {
	const n = 10000
	dir, size := benchJournal(b, n)
	b.ResetTimer()
	for range b.N {
		if _, err := Repair(dir); err != nil {
			b.Fatal(err)
		}
		j, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		count := 0
		err = Scan(dir, ScanOptions{Strict: true}, func(*Event) error { count++; return nil })
		if cerr := j.Close(); err == nil {
			err = cerr
		}
		if err != nil || count != n {
			b.Fatalf("scanned %d events: %v", count, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
	b.ReportMetric(float64(size)/n, "bytes/event")
}

// BenchmarkOpen10000 is Open alone (lock, repair check, wal open) of a
// journal of 10,000 task events (2.4 MB): Open checks every segment.
func BenchmarkOpen10000(b *testing.B) {
	const n = 10000
	dir, _ := benchJournal(b, n)
	b.ResetTimer()
	for range b.N {
		j, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := j.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
}

// benchJournal writes a journal of n task events and returns its directory
// and size in bytes.
func benchJournal(b *testing.B, n int) (string, uint64) {
	dir := b.TempDir()
	j, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	evs := benchEvents(n)
	for k := 0; k < n; k += 100 {
		if err := j.AppendLazy(evs[k : k+100]...); err != nil {
			b.Fatal(err)
		}
	}
	size := j.Stats().BytesWritten
	if err := j.Close(); err != nil {
		b.Fatal(err)
	}
	return dir, size
}
