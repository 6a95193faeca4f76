//go:build !linux

package shell

import "testing"

// subreaper needs prctl(PR_SET_CHILD_SUBREAPER), which only Linux has.
func subreaper(t *testing.T) {
	t.Helper()
	t.Skip("needs prctl(PR_SET_CHILD_SUBREAPER): Linux only")
}
