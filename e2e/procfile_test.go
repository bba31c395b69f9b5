package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
)

// TestProcfileOnlyApp deploys a directory that holds a Procfile and no spec: the app is
// named after the directory and runs one web dyno, and its other process types none.
func TestProcfileOnlyApp(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t)
	consul, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	dir := copyApp(t) // a folder named hello
	if err := os.Remove(filepath.Join(dir, "dyno.hcl")); err != nil {
		t.Fatal(err)
	}
	procfile := "web: thin start --rackup config.ru --address 0.0.0.0 --port $PORT\nworker: sleep 3600\n"
	if err := os.WriteFile(filepath.Join(dir, "Procfile"), []byte(procfile), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, g, "hello")
	c.must("deploy", dir)
	dynos := passingDynos(t, consul, "hello", 1, time.Minute)
	if body := get(t, dynos["web.1"], "/"); !strings.Contains(body, "Hello from web.1") {
		t.Errorf("web.1 answered %q", body)
	}
	if out := c.must("ps"); !strings.Contains(out, "=== web (1)") || strings.Contains(out, "worker") {
		t.Errorf("ps of a Procfile-only app said:\n%s", out)
	}
}
