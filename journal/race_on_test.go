//go:build race

package journal

// raceEnabled: the race detector is on. Under it sync.Pool (encoding/json
// keeps its encode buffers in one) drops a share of what is put back, on
// purpose, so allocation counts mean nothing.
const raceEnabled = true
