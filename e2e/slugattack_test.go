package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/slug"
)

// TestSlugSourceAttacks registers, with an app's own deploy token, jobs whose dyno names
// a slug outside the grid's slug store: a valid slug of the right sha256 in a host
// directory, and the same slug served by a listener on the host's loopback (where the
// agents' APIs are). The driver, which runs as root on the host's network, refuses both
// before it opens the file or sends a request: each allocation fails with an error
// naming slug and the store, the listener sees no request, and nothing is unpacked.
func TestSlugSourceAttacks(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t)
	const app = "tenant"
	n := tenantNomad(t, g, app)

	s, err := slug.Pack(copyApp(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.ServeFile(w, r, s.Path)
	}))
	t.Cleanup(agent.Close)

	store := g.Options.SlugStore()
	for name, src := range map[string]string{
		"host-path": s.Path,
		"loopback":  agent.URL + "/" + s.SHA256 + ".tar.gz",
	} {
		config := map[string]any{"command": "/bin/sh", "args": []string{"-c", "true"}, "slug": src, "slug_sha256": s.SHA256}
		failure := refusedDyno(t, n, app+"-steal-"+name, nomadapi.NewTaskGroup("steal", 1), config)
		want := fmt.Sprintf("slug: %q is not a slug of the grid's slug store: a slug must be %s (plugin config slug_store_dir)",
			src, filepath.Join(store, "<slug_sha256>.tar.gz"))
		if !strings.Contains(failure, want) {
			t.Errorf("the dyno of %s failed with %q, want it to say %q", name, failure, want)
		}
	}
	if got := hits.Load(); got != 0 {
		t.Errorf("the loopback listener got %d requests from the driver", got)
	}
	if _, err := os.Stat(filepath.Join(g.Options.DataDir, "slugs", s.SHA256)); !os.IsNotExist(err) {
		t.Errorf("the refused slug was unpacked on the host: %v", err)
	}
}
