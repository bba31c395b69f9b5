package devgrid

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The production clients of examples/cluster are hardened as a dev grid's are: the same
// template functions off, and (where dynos run) the same host ports reserved.
func TestClusterClientsHardenedAsDevGrids(t *testing.T) {
	t.Parallel()
	for file, reserved := range map[string]bool{"client.hcl": true, "edge.hcl": false} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "cluster", "nomad", file))
		if err != nil {
			t.Fatal(err)
		}
		if want := "function_denylist = " + TemplateFunctionDenylist; !strings.Contains(string(b), want) {
			t.Errorf("%s does not have %s", file, want)
		}
		if want := `reserved_ports = "` + StaticPortsReserved + `"`; reserved && !strings.Contains(string(b), want) {
			t.Errorf("%s does not have %s", file, want)
		}
	}
	if !strings.Contains(Options{}.nomadConfig(""), "function_denylist = "+TemplateFunctionDenylist) {
		t.Error("a dev grid's Nomad configuration does not turn the template functions off")
	}
}
