//go:build !cgo

package projector

// IsCorrupt is false without cgo: there is no SQLite then (mattn/go-sqlite3
// needs cgo, and every Open fails saying so), so no database is judged.
// Only cross-checks such as GOOS=darwin CGO_ENABLED=0 go vet build this.
func IsCorrupt(err error) bool { return false }
