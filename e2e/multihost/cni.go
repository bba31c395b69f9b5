package multihost

import (
	"os"
	"path/filepath"

	"github.com/dynogrid/dynogrid/internal/devgrid"
)

// removeAllocNetworks removes the network namespaces and CNI address reservations of
// the grid's allocations, which Nomad clients killed by the teardown leave behind.
func (g *Grid) removeAllocNetworks() error {
	dirs, _ := filepath.Glob(filepath.Join(g.Dir, "*", "nomad", "alloc", "*"))
	var ids []string
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() && len(filepath.Base(d)) == 36 {
			ids = append(ids, filepath.Base(d))
		}
	}
	return devgrid.RemoveAllocNetworks(ids)
}
