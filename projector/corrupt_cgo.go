//go:build cgo

package projector

import (
	"errors"

	"github.com/mattn/go-sqlite3"
)

// IsCorrupt reports whether err means the database file is damaged or not
// a database at all; the remedy is to remove it and rebuild.
func IsCorrupt(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrCorrupt || se.Code == sqlite3.ErrNotADB
	}
	return false
}
