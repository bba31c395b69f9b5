package e2e

import (
	"context"
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
// being retired is). Under an open-loop load through the router, each of these then
// fails within seconds of Nomad's try to place a dyno, naming the stack the release
// needs, and undoes itself: a `dyno ps:scale web=2` (the count goes back to 1); a `dyno
// deploy` whose build ran on the first host (eligible while its build dyno was placed,
// retired again before the build ended) and so needs debian-12; and a `dyno rollback` to
// that release. The running dyno of the first release answers every request throughout.
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
	waitMoreAnswers(t, load, 100)
	first := currentRelease(t, appN, app)

	// A deploy built on debian-12: the retired host takes the build dyno alone (the
	// upgraded one is ineligible meanwhile), and is retired again while the build waits
	// for the test's go-ahead, so that the release finds no host of its stack.
	var newHost string
	for _, n := range nodes(t, nomad) {
		if n.Name == upgraded {
			newHost = n.ID
		}
	}
	eligible := func(node string, yes bool) {
		t.Helper()
		if _, err := nomad.Nodes().ToggleEligibility(node, yes, nil); err != nil {
			t.Fatal(err)
		}
	}
	eligible(newHost, false)
	eligible(old[0].ID, true)
	const goAhead = "/app/tmp/stack-test-go-ahead"
	waitpack := writeBuildpack(t, "waitpack", "#!/bin/sh\necho Wait\n", fmt.Sprintf(`#!/bin/sh
i=0
until [ -e %[1]s ]; do
  i=$((i+1))
  if [ $i -gt 1200 ]; then echo "no go-ahead in 120 s"; exit 1; fi
  sleep 0.1
done
echo "-----> Going ahead"
`, goAhead))
	dir := copyBuildApp(t, "nodeapp", app)
	if err := os.WriteFile(filepath.Join(dir, "mark"), []byte("two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeSpec(t, dir, fmt.Sprintf("app %q {\n  buildpacks = [%q, \"nodejs\"]\n  process \"web\" {\n    command = \"npm start\"\n  }\n}\n", app, waitpack))
	type result struct {
		code        int
		out, errOut string
		end         time.Time
	}
	deployed := make(chan result, 1)
	go func() {
		code, out, errOut := c.run("deploy", dir)
		deployed <- result{code, out, errOut, time.Now()}
	}()
	var build *nomadapi.AllocationListStub
	testutil.WaitFor(t, 2*time.Minute, "the build dyno to run on the debian-12 host", func() error {
		select {
		case r := <-deployed:
			t.Fatalf("the deploy ended before its build dyno was seen: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.errOut)
		default:
		}
		allocs, _, err := appN.Allocations().List(nil)
		if err != nil {
			return err
		}
		for _, a := range allocs {
			if strings.HasPrefix(a.JobID, app+"-build-") && a.ClientStatus == nomadapi.AllocClientStatusRunning {
				if a.NodeID != old[0].ID {
					t.Fatalf("the build dyno runs on %s, not on the debian-12 host %s", a.NodeName, old[0].Name)
				}
				build = a
				return nil
			}
		}
		return fmt.Errorf("no running build dyno among %d allocations", len(allocs))
	})
	eligible(old[0].ID, false)
	eligible(newHost, true)
	// The build dyno's ./tmp is a tmpfs of its own (no host directory): the go-ahead goes
	// in through an exec session of the build dyno, which shares its ./tmp.
	buildAlloc, _, err := appN.Allocations().Info(build.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	var execOut, execErr strings.Builder
	execCtx, cancelExec := context.WithTimeout(context.Background(), time.Minute)
	code, err = appN.Allocations().Exec(execCtx, buildAlloc, "run", false, []string{"/bin/sh", "-c", "touch " + goAhead},
		strings.NewReader(""), &execOut, &execErr, nil, nil)
	cancelExec()
	if err != nil || code != 0 {
		t.Fatalf("touch %s in the build dyno: exit %d, %v\n%s%s", goAhead, code, err, execOut.String(), execErr.String())
	}
	ahead := time.Now()
	var r result
	select {
	case r = <-deployed:
	case <-time.After(10 * time.Minute):
		t.Fatal("the deploy did not end within 10 minutes")
	}
	t.Logf("deploy ended %s after the build went ahead: exit %d\nstdout:\n%s\nstderr:\n%s",
		r.end.Sub(ahead).Round(time.Millisecond), r.code, r.out, r.errOut)
	if r.code == 0 || !strings.Contains(r.errOut, want) || !strings.Contains(r.errOut, "the previous release keeps serving") {
		t.Errorf("deploy of a release built on %s onto a grid without it: exit %d, stderr:\n%s\nwant a failure with %q", built, r.code, r.errOut, want)
	}
	if !strings.Contains(r.out, "Going ahead") {
		t.Errorf("the deploy's build did not run the waiting buildpack:\n%s", r.out)
	}
	if d := r.end.Sub(ahead); d > time.Minute {
		t.Errorf("the deploy failed %s after its build went ahead; want it caught at placement, not at the deploy's timeout", d)
	}
	failed := waitRelease(t, appN, app, first)
	waitMoreAnswers(t, load, 100)

	// A rollback to that release fails alike, and the first release keeps serving.
	start = time.Now()
	code, out, errOut = c.run("rollback", failed)
	took = time.Since(start)
	t.Logf("rollback %s took %s: exit %d\nstdout:\n%s\nstderr:\n%s", failed, took.Round(time.Millisecond), code, out, errOut)
	if code == 0 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "the previous release keeps serving") {
		t.Errorf("rollback to %s, built on %s, onto a grid without it: exit %d, stderr:\n%s\nwant a failure with %q", failed, built, code, errOut, want)
	}
	if took > time.Minute {
		t.Errorf("rollback took %s to fail; want it caught at placement, not at the deploy's timeout", took)
	}
	waitRelease(t, appN, app, first)
	waitMoreAnswers(t, load, 100)
	allAnswered(t, load, "the running dyno of a release no other host can take")
	if body := waitRouted(t, g, app+".localhost", "mark=one"); !strings.Contains(body, `ms("2 days")`) {
		t.Errorf("the first release answers %q", body)
	}
}

// currentRelease is app's current release (job meta dyno.release).
func currentRelease(t *testing.T, appN *nomadapi.Client, app string) string {
	t.Helper()
	j, _, err := appN.Jobs().Info(app, nil)
	if err != nil {
		t.Fatal(err)
	}
	return j.Meta[deploy.MetaRelease]
}

// waitRelease waits until a failed release of app has been reverted to release want,
// and returns the newest release that is not want: the one that failed.
func waitRelease(t *testing.T, appN *nomadapi.Client, app, want string) string {
	t.Helper()
	var failed string
	testutil.WaitFor(t, time.Minute, "the failed release to be reverted to "+want, func() error {
		versions, _, _, err := appN.Jobs().Versions(app, false, nil)
		if err != nil {
			return err
		}
		if len(versions) == 0 || versions[0].Meta[deploy.MetaRelease] != want {
			return fmt.Errorf("the newest version is not %s", want)
		}
		for _, v := range versions {
			if r := v.Meta[deploy.MetaRelease]; r != want {
				failed = r
				return nil
			}
		}
		return fmt.Errorf("no release other than %s", want)
	})
	return failed
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
    slug_dir       = %q
    slug_store_dir = %q
    dyno_dir       = %q
    cgroup_parent  = %q
%s  }
}
`, filepath.Join(dir, "nomad"), filepath.Join(g.Options.DataDir, "plugins"), name, port, port+1, port+2, g.Options.NomadPort+1,
			name, filepath.Join(dir, "slugs"), g.Options.SlugStore(), filepath.Join(dir, "dynos"), name, gridFirewall(t, g)),
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
