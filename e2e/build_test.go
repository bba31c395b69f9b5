package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/e2e/multihost"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// copyBuildApp copies the app testdata/buildpacks/<name> into a fresh directory named
// app.
func copyBuildApp(t testing.TB, name, app string) string {
	t.Helper()
	return harness.CopyDir(t, filepath.Join(harness.RepoRoot(t), "e2e", "testdata", "buildpacks", name), app)
}

// deployTokenCLI is the CLI of app with the app's own deploy token, which an operator
// made with apps:token: what an app's owner deploys with.
func deployTokenCLI(t *testing.T, g *devgrid.Grid, app string) *dynoCLI {
	t.Helper()
	token := strings.TrimSpace(newCLI(t, g, app).must("apps:token"))
	c := newCLI(t, g, app)
	for i, a := range c.base {
		if a == "--nomad-token" {
			c.base[i+1] = token
		}
	}
	return c
}

// waitRouted waits until the router answers host's / with 200 and a body holding want.
func waitRouted(t *testing.T, g *devgrid.Grid, host, want string) string {
	t.Helper()
	var body string
	testutil.WaitFor(t, 2*time.Minute, host+" to answer "+want+" through the router", func() error {
		var code int
		code, body = through(t, "http://"+g.Options.RouterAddr(), host, "/")
		if code != http.StatusOK || !strings.Contains(body, want) {
			return fmt.Errorf("%d %q", code, body)
		}
		return nil
	})
	return body
}

// TestBuildNodeApp deploys a Node.js app from source (package.json, package-lock.json
// and a dependency from the npm registry) with the app's deploy token: it builds in a
// build dyno, its output streams to the deploy, its dynos run what npm ci installed and
// serve through the router, and its job asks for the stack and node it was built on.
// Before that, dyno plan of the source shows the web process the build would give.
// A second deploy of the same source restores npm's cache from the app's build cache
// and makes the same slug.
func TestBuildNodeApp(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t, harness.WithRouter(t))
	const app = "nodeapp"
	dir := copyBuildApp(t, "nodeapp", app)
	c := deployTokenCLI(t, g, app)

	// dyno plan builds nothing: it says a build runs, with the web process the Node.js
	// buildpack gives an app without a Procfile.
	out := c.must("plan", dir)
	t.Logf("dyno plan said:\n%s", out)
	for _, want := range []string{"nodeapp is built on deploy, by buildpack nodejs", "process type from the buildpacks' defaults: web: npm start", "nodeapp: added", "process web: added"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan of the app's source lacks %q:\n%s", want, out)
		}
	}

	out = c.must("deploy", dir)
	for _, want := range []string{"Node.js app detected (buildpack nodejs)", "Build cache: empty", "Installing dependencies: npm ci", "Stack debian-"} {
		if !strings.Contains(out, want) {
			t.Errorf("the first build's output lacks %q:\n%s", want, out)
		}
	}
	body := waitRouted(t, g, app+".localhost", `ms("2 days")=172800000`)
	t.Logf("nodeapp answered %q", body)

	nomad := appNomad(t, g, app)
	job, _, err := nomad.Jobs().Info(app, nil)
	if err != nil {
		t.Fatal(err)
	}
	var constraints []string
	for _, con := range job.Constraints {
		constraints = append(constraints, con.LTarget+" "+con.Operand+" "+con.RTarget)
	}
	if !strings.HasPrefix(job.Meta[deploy.MetaStack], "debian-") || len(constraints) != 2 ||
		!strings.Contains(strings.Join(constraints, "\n"), "${attr.driver.dyno.stack.node} regexp ^20") {
		t.Errorf("the built app's job has stack %q and constraints %q; want the build's stack and its node major", job.Meta[deploy.MetaStack], constraints)
	}

	// The same source again: the build cache is restored and npm installs offline.
	out = c.must("deploy", dir)
	if !strings.Contains(out, "Build cache: restoring npm's cache") || strings.Contains(out, "Build cache: empty") {
		t.Errorf("the second build did not reuse the build cache:\n%s", out)
	}
	second, _, err := nomad.Jobs().Info(app, nil)
	if err != nil {
		t.Fatal(err)
	}
	if second.Meta[deploy.MetaSlug] != job.Meta[deploy.MetaSlug] {
		t.Errorf("the same source built twice made slugs %s and %s", job.Meta[deploy.MetaSlug], second.Meta[deploy.MetaSlug])
	}
}

// packGem builds the dynogreet gem (a native extension) from testdata into the app's
// vendor/cache, as an app vendors its gems.
func packGem(t *testing.T, dir string) {
	t.Helper()
	src := harness.CopyDir(t, filepath.Join(harness.RepoRoot(t), "e2e", "testdata", "buildpacks", "dynogreet"), "dynogreet")
	cmd := exec.Command("gem", "build", "dynogreet.gemspec")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gem build: %v\n%s", err, out)
	}
	cache := filepath.Join(dir, "vendor", "cache")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(src, "dynogreet-1.0.0.gem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cache, "dynogreet-1.0.0.gem"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBuildRubyApp deploys a Rack app with a Gemfile, with the app's deploy token: rack
// and thin come from the gems installed on the stack, and dynogreet, a gem with a native
// extension, from vendor/cache, compiled in the build dyno against the stack's ruby. Its
// web process is the Ruby buildpack's default (its Procfile has none) and it serves
// through the router. Then, under an open-loop load through the router:
//   - a second deploy of the same source reuses the build cache (nothing is compiled);
//   - a deploy whose Gemfile is broken fails naming bin/compile of the Ruby buildpack;
//   - a deploy whose spec names a buildpack that prints its ENV_DIR, then one that does
//     not detect the app, shows ENV_DIR holding the app's config vars (one set with
//     config:set, the spec's over another), and fails naming bin/detect;
//
// and the first release answers every request of the load.
func TestBuildRubyApp(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t, harness.WithRouter(t))
	const app = "rubyapp"
	dir := copyBuildApp(t, "rubyapp", app)
	packGem(t, dir)
	c := deployTokenCLI(t, g, app)

	out := c.must("deploy", dir)
	for _, want := range []string{"Ruby app detected (buildpack ruby)", "Build cache: empty", "Installing dynogreet 1.0.0 with native extensions"} {
		if !strings.Contains(out, want) {
			t.Errorf("the first build's output lacks %q:\n%s", want, out)
		}
	}
	body := waitRouted(t, g, app+".localhost", "hello from a native extension on ruby 3.")
	t.Logf("rubyapp answered %q", body)
	nomad := appNomad(t, g, app)
	job, _, err := nomad.Jobs().Info(app, nil)
	if err != nil {
		t.Fatal(err)
	}
	web := job.LookupTaskGroup("web")
	if web == nil || !strings.Contains(fmt.Sprint(web.Tasks[0].Config["args"]), "bundle exec rackup") {
		t.Errorf("the app's web process is not the Ruby buildpack's default: %+v", web)
	}

	// Config vars set with config:set reach the next builds' ENV_DIR (checked below).
	c.must("config:set", "PROBE_SET=from-config-set", "PROBE_BOTH=from-config-set")

	load := multihost.StartLoad(g.Options.RouterAddr(), app+".localhost", "/", 20)
	defer load.Stop()

	// The same source again: the gems come from the build cache.
	out = c.must("deploy", dir)
	if !strings.Contains(out, "Build cache: restoring 1 installed gems") || strings.Contains(out, "Installing dynogreet") {
		t.Errorf("the second build did not reuse the build cache:\n%s", out)
	}
	waitRouted(t, g, app+".localhost", "mark=one")
	released, _, err := nomad.Jobs().Info(app, nil)
	if err != nil {
		t.Fatal(err)
	}

	// A broken Gemfile: the build fails in bin/compile, and nothing is released.
	if err := os.WriteFile(filepath.Join(dir, "Gemfile"), []byte("gem \"rack\",\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mark"), []byte("two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := c.run("deploy", dir)
	if code == 0 || !strings.Contains(stderr, "build failed: ruby bin/compile exited") || !strings.Contains(stdout, "Installing gems") {
		t.Errorf("a deploy with a broken Gemfile: exit %d, stdout:\n%s\nstderr:\n%s\nwant a failure naming the Ruby buildpack's bin/compile", code, stdout, stderr)
	}

	// A buildpack that prints its ENV_DIR, then one that does not detect the app.
	never := writeBuildpack(t, "never", "#!/bin/sh\necho 'no never.txt here'\nexit 1\n", "#!/bin/sh\nexit 0\n")
	probe := writeBuildpack(t, "probe", "#!/bin/sh\necho Probe\n", "#!/bin/sh\nfor f in \"$3\"/PROBE_*; do echo \"ENV_DIR $(basename \"$f\")=$(cat \"$f\")\"; done\n")
	writeSpec(t, dir, fmt.Sprintf("app %q {\n  procfile   = \"Procfile\"\n  buildpacks = [%q, %q]\n  config {\n    PROBE_BOTH = \"from-spec\"\n  }\n}\n", app, probe, never))
	code, stdout, stderr = c.run("deploy", dir)
	if code == 0 || !strings.Contains(stderr, "build failed: never bin/detect: the buildpack does not apply to this app") || !strings.Contains(stdout, "no never.txt here") {
		t.Errorf("a deploy with a buildpack that does not detect the app: exit %d, stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"ENV_DIR PROBE_BOTH=from-spec", "ENV_DIR PROBE_SET=from-config-set"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the build's ENV_DIR lacks the app's config vars (config:set's, the spec's on top): no %q in\n%s", want, stdout)
		}
	}

	allAnswered(t, load, "the released app while two builds failed")
	job, _, err = nomad.Jobs().Info(app, nil)
	if err != nil || *job.Version != *released.Version || job.Meta[deploy.MetaRelease] != released.Meta[deploy.MetaRelease] {
		t.Errorf("after two failed builds the app's job is at %s (version %d, %v), want %s", job.Meta[deploy.MetaRelease], *job.Version, err, released.Meta[deploy.MetaRelease])
	}
	if body := waitRouted(t, g, app+".localhost", "mark=one"); strings.Contains(body, "two") {
		t.Errorf("a failed build's code is serving: %q", body)
	}
}

// writeBuildpack writes a buildpack named name whose bin/detect and bin/compile are the
// scripts given, and whose bin/release gives nothing.
func writeBuildpack(t *testing.T, name, detect, compile string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for script, body := range map[string]string{"detect": detect, "compile": compile, "release": "#!/bin/sh\necho '--- {}'\n"} {
		if err := os.WriteFile(filepath.Join(dir, "bin", script), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
