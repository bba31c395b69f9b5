package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/e2e/multihost"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// TestMissingStackFailsAtPlacement builds and deploys the Node.js app on a grid whose
// host has the stack debian-12, then upgrades the grid: a second Nomad client joins
// whose dyno driver fingerprints debian-13 (its /usr/lib/os-release says so, in a mount
// namespace of its own), and the first host takes no new dynos (ineligible, as a host
// being retired is). A `dyno ps:scale web=2` under an open-loop load through the router
// then fails within seconds, naming the stack the release needs, the count goes back
// to 1, and the running dyno answers every request, during the scale and after it.
func TestMissingStackFailsAtPlacement(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t, harness.WithRouter(t))
	const app = "stackapp"
	c := newCLI(t, g, app)
	c.must("deploy", copyBuildApp(t, "nodeapp", app))
	waitRouted(t, g, app+".localhost", `ms("2 days")`)
	nomad, err := g.NomadClient()
	if err != nil {
		t.Fatal(err)
	}
	job, _, err := appNomad(t, g, app).Jobs().Info(app, nil)
	if err != nil {
		t.Fatal(err)
	}
	built := job.Meta[deploy.MetaStack]
	old := nodes(t, nomad)
	if len(old) != 1 || old[0].Attributes[deploy.AttrStack] != built {
		t.Fatalf("the grid's host has stack %q, the release %q", old[0].Attributes[deploy.AttrStack], built)
	}

	upgraded := startUpgradedClient(t, g, "debian-13")
	testutil.WaitFor(t, time.Minute, "the upgraded host to fingerprint its stack", func() error {
		for _, n := range nodes(t, nomad) {
			if n.Name == upgraded && n.Status == "ready" && n.Attributes[deploy.AttrStack] == "debian-13" {
				return nil
			}
		}
		return fmt.Errorf("no ready node %s with stack debian-13", upgraded)
	})
	if _, err := nomad.Nodes().ToggleEligibility(old[0].ID, false, nil); err != nil {
		t.Fatal(err)
	}

	load := multihost.StartLoad(g.Options.RouterAddr(), app+".localhost", "/", 20)
	defer load.Stop()
	start := time.Now()
	code, out, errOut := c.run("ps:scale", "web=2")
	took := time.Since(start)
	t.Logf("ps:scale web=2 took %s: exit %d\nstdout:\n%s\nstderr:\n%s", took.Round(time.Millisecond), code, out, errOut)
	want := "no host of the grid has the stack its slug was built on (${attr.driver.dyno.stack} = " + built + " filtered 1 of 1 hosts"
	if code == 0 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "the previous release keeps serving") {
		t.Errorf("ps:scale onto a grid without the release's stack: exit %d, stderr:\n%s\nwant a failure with %q", code, errOut, want)
	}
	if took > time.Minute {
		t.Errorf("ps:scale took %s to fail; want it caught at placement, not at the deploy's timeout", took)
	}
	appN := appNomad(t, g, app)
	testutil.WaitFor(t, time.Minute, "the scale to be reverted", func() error {
		j, _, err := appN.Jobs().Info(app, nil)
		if err != nil {
			return err
		}
		if n := *j.LookupTaskGroup("web").Count; n != 1 {
			return fmt.Errorf("web has count %d", n)
		}
		return nil
	})
	// The failure took less than a second: five more seconds of load on what was left.
	waitMoreAnswers(t, load, 100)
	allAnswered(t, load, "the running dyno of a release no other host can take")
}

// nodes are the grid's Nomad clients, with their attributes.
func nodes(t *testing.T, nomad *nomadapi.Client) []*nomadapi.Node {
	t.Helper()
	stubs, _, err := nomad.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []*nomadapi.Node
	for _, s := range stubs {
		n, _, err := nomad.Nodes().Info(s.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// startUpgradedClient starts a Nomad client that joins g, with the grid's plugins,
// whose host looks upgraded to stack (ID-VERSION_ID): it runs in a mount namespace of
// its own where /usr/lib/os-release and /etc/debian_version say so, which the dyno
// driver reads. It returns the client's node name; the client stops with the test.
func startUpgradedClient(t *testing.T, g *devgrid.Grid, stack string) string {
	t.Helper()
	id, version, _ := strings.Cut(stack, "-")
	dir, err := os.MkdirTemp("", "dynogrid-e2e-upgraded-")
	if err != nil {
		t.Fatal(err)
	}
	port := harness.FreePorts(t, 3)
	name := fmt.Sprintf("upgraded-%d", port)
	files := map[string]string{
		"os-release":     fmt.Sprintf("ID=%s\nVERSION_ID=%q\n", id, version),
		"debian_version": version + ".1\n",
		"nomad.hcl": fmt.Sprintf(`disable_update_check = true
data_dir   = %q
plugin_dir = %q
name       = %q
bind_addr  = "127.0.0.1"
ports {
  http = %d
  rpc  = %d
  serf = %d
}
advertise {
  http = "127.0.0.1"
  rpc  = "127.0.0.1"
  serf = "127.0.0.1"
}
acl {
  enabled = true
}
consul {
  address          = "127.0.0.1:1"
  auto_advertise   = false
  client_auto_join = false
}
client {
  enabled           = true
  servers           = ["127.0.0.1:%d"]
  network_interface = "lo"
  cgroup_parent     = %q
}
plugin "nomad-driver-dyno" {
  config {
    slug_dir      = %q
    dyno_dir      = %q
    cgroup_parent = %q
%s  }
}
`, filepath.Join(dir, "nomad"), filepath.Join(g.Options.DataDir, "plugins"), name, port, port+1, port+2, g.Options.NomadPort+1,
			name, filepath.Join(dir, "slugs"), filepath.Join(dir, "dynos"), name, gridFirewall(t, g)),
	}
	for f, body := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	logf, err := os.Create(filepath.Join(dir, "nomad.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount --bind "$1/os-release" /usr/lib/os-release && mount --bind "$1/debian_version" /etc/debian_version && exec "$2" agent -config "$1/nomad.hcl"`,
		"sh", dir, filepath.Join(g.Options.BinDir, "nomad"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("the upgraded client's log:\n%s", devgrid.Tail(filepath.Join(dir, "nomad.log"), 40))
		}
		_ = os.RemoveAll(dir)
	})
	return name
}

// gridFirewall is the lines of g's dyno driver configuration that set its firewall (the
// bridge and the endpoints dynos may reach): a driver configured alike installs the
// same rules for the same bridge, and touches no other's.
func gridFirewall(t *testing.T, g *devgrid.Grid) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(g.Options.DataDir, "nomad.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	var lines string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && (f[0] == "bridge" || f[0] == "allowed_endpoints") && f[1] == "=" {
			lines += l + "\n"
		}
	}
	if !strings.Contains(lines, "bridge") {
		t.Fatalf("the grid's Nomad configuration names no bridge for the dyno driver:\n%s", b)
	}
	return lines
}
