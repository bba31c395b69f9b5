package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"
)

// TestSmoke runs a job on a real grid and waits for its service to pass in Consul, then
// asks the service itself through the address Consul gives.
func TestSmoke(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t)
	nomad, err := g.NomadClient()
	if err != nil {
		t.Fatal(err)
	}
	consul, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}

	job := parseJob(t, nomad, "smoke.nomad.hcl")
	if _, _, err := nomad.Jobs().Register(job, nil); err != nil {
		t.Fatalf("register smoke job: %v", err)
	}

	entry := waitPassing(t, consul, "smoke-web", 3*time.Minute)
	url := fmt.Sprintf("http://%s:%d/", entry.Service.Address, entry.Service.Port)
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "ok from smoke") {
		t.Fatalf("GET %s = %d %q, want 200 with the smoke page", url, resp.StatusCode, body)
	}
}

// parseJob parses a job file of e2e/jobs with the agent's own parser.
func parseJob(t *testing.T, nomad *nomadapi.Client, name string) *nomadapi.Job {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), "e2e", "jobs", name))
	if err != nil {
		t.Fatal(err)
	}
	job, err := nomad.Jobs().ParseHCL(string(src), true)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return job
}

// waitPassing polls Consul until service has a passing instance, and returns it.
func waitPassing(t *testing.T, consul *consulapi.Client, service string, within time.Duration) *consulapi.ServiceEntry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var index uint64
	var last string
	for {
		q := (&consulapi.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second}).WithContext(ctx)
		entries, meta, err := consul.Health().Service(service, "", true, q)
		if err == nil && len(entries) > 0 {
			return entries[0]
		}
		if err != nil {
			last = err.Error()
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		} else {
			index = meta.LastIndex
			last = "no passing instance"
		}
		if ctx.Err() != nil {
			t.Fatalf("service %s did not pass within %s: %s", service, within, last)
		}
	}
}
