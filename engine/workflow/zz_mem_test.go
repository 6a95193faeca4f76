package workflow

import (
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
)

func TestZZMem(t *testing.T) {
	f := os.Getenv("ZZFILE")
	if f == "" {
		t.Skip()
	}
	runtime.MemProfileRate = 4096
	w, err := LoadWith(f, Config{MaxFileSize: 64 << 20, Backoff: BuiltinConfig().Backoff})
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("tasks %d live heap %d KiB (%.0f B/task) total alloc %d MiB", len(w.Tasks), ms.HeapAlloc>>10, float64(ms.HeapAlloc)/float64(len(w.Tasks)), ms.TotalAlloc>>20)
	if p := os.Getenv("ZZPROF"); p != "" {
		out, _ := os.Create(p)
		pprof.Lookup("allocs").WriteTo(out, 0)
		out.Close()
	}
	runtime.KeepAlive(w)
}
