package devgrid

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The production clients of examples/cluster are hardened as a dev grid's are: the same
// template functions off, and where dynos run the same host ports reserved and
// artifacts off.
func TestClusterClientsHardenedAsDevGrids(t *testing.T) {
	t.Parallel()
	for file, reserved := range map[string]bool{"client.hcl": true, "edge.hcl": false} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "cluster", "nomad", file))
		if err != nil {
			t.Fatal(err)
		}
		if want := "function_denylist = " + templateFunctionDenylist; !strings.Contains(string(b), want) {
			t.Errorf("%s does not have %s", file, want)
		}
		if want := `reserved_ports = "` + staticPortsReserved + `"`; reserved && !strings.Contains(string(b), want) {
			t.Errorf("%s does not have %s", file, want)
		}
		if reserved && !strings.Contains(string(b), artifactsOff) {
			t.Errorf("%s does not have\n%s", file, artifactsOff)
		}
	}
	cfg := Options{}.nomadConfig("")
	if !strings.Contains(cfg, "function_denylist = "+templateFunctionDenylist) || !strings.Contains(cfg, artifactsOff) {
		t.Errorf("a dev grid's Nomad configuration does not turn the template functions and artifacts off:\n%s", cfg)
	}
}
