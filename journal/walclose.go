package journal

import (
	"os"
	"reflect"
	"unsafe"

	"github.com/tidwall/wal"
)

// closeSynced closes a wal whose every entry is durable already, without
// the fsync the wal's Close does first: tidwall/wal has no Close without
// it, and that fsync, for nothing, would be one of the four a one-task run
// may spend (issue 16). It closes the wal's tail file (the only descriptor
// the wal keeps open: it reads the other segments whole) and the caller
// drops the wal. Should a later version of the wal rename or retype that
// field, it falls back to the wal's Close; TestWalTail notices.
func closeSynced(l *wal.Log) error {
	if f := walTail(l); f != nil {
		return f.Close()
	}
	return l.Close()
}

// walTail returns the wal's open tail segment file, or nil.
func walTail(l *wal.Log) *os.File {
	v := reflect.ValueOf(l).Elem().FieldByName("sfile")
	if !v.IsValid() || v.Type() != reflect.TypeFor[*os.File]() {
		return nil
	}
	return *(**os.File)(unsafe.Pointer(v.UnsafeAddr()))
}
