package driver_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/shoenig/test/must"

	"github.com/dynogrid/dynogrid/e2e/harness"
)

// procfileLine is the command of a process type in the example app's Procfile.
func procfileLine(t testing.TB, dir, process string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "Procfile"))
	must.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if name, cmd, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(name) == process {
			return strings.TrimSpace(cmd)
		}
	}
	t.Fatalf("Procfile of %s has no %q process", dir, process)
	return ""
}

// thinGroup is a web dyno of examples/thin served from its slug.
func thinGroup(t testing.TB, driverName string, slug, sum string) *nomadapi.TaskGroup {
	dir := filepath.Join(harness.RepoRoot(t), "examples", "thin")
	g := nomadapi.NewTaskGroup("web", 1)
	g.Networks = []*nomadapi.NetworkResource{{DynamicPorts: []nomadapi.Port{{Label: "web"}}}}
	config := map[string]interface{}{
		"command": "/bin/sh",
		"args":    []string{"-c", procfileLine(t, dir, "web")},
	}
	if driverName == "dyno" {
		config["slug"], config["slug_sha256"] = slug, sum
	}
	task := dynoTask("web", config, map[string]string{"PORT": "${NOMAD_PORT_web}", "DYNO": "web.1", "RACK_ENV": "production"}, 256, 1)
	task.Driver = driverName
	g.AddTask(task)
	return g
}

func TestE2E_ThinDyno(t *testing.T) {
	t.Parallel()
	_, c := grid(t)
	slug, sum := packSlug(t, filepath.Join(harness.RepoRoot(t), "examples", "thin"), nil)
	register(t, c, "hello", "service", thinGroup(t, "dyno", slug, sum))
	a := waitAlloc(t, c, "hello", "web", 2*time.Minute, taskRunning("web"))
	port := allocPort(t, a, "web")
	body := waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 60*time.Second)
	must.StrContains(t, body, "Hello from web.1")
	// ./tmp is writable.
	body = waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/tmp", port), 10*time.Second)
	must.StrContains(t, body, "wrote tmp/visit-")
}

// waitHTTP polls url until it answers 200 and returns the body.
func waitHTTP(t testing.TB, url string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	var last string
	for {
		resp, err := client.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(b)
			}
			last = fmt.Sprintf("%s: %s", resp.Status, b)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 within %s; last: %s", url, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
