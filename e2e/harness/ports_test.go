package harness

import "testing"

// Runs of ports handed out in one process never overlap, though none is listened on
// yet: a grid's ports and a test's own (a database's) are asked for before any starts.
func TestFreePortRunsNeverOverlap(t *testing.T) {
	taken := map[int]bool{}
	for range 500 {
		base := freePortRun(t, 4)
		for p := base; p < base+4; p++ {
			if taken[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			taken[p] = true
		}
	}
}
