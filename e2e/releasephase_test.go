package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/e2e/multihost"
	"github.com/dynogrid/dynogrid/internal/cli"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/testutil"
	nomadapi "github.com/hashicorp/nomad/api"
)

// releaseScript is the example app's release phase in these tests: it prints the
// release's config var MARK (the new config, not the running release's), then exits
// with the code in the file exit-code of the app's code (the new slug).
const releaseScript = `echo "release phase of mark $MARK starts"
code=$(cat exit-code)
echo "release phase of mark $MARK ends with $code"
exit "$code"
`

// writeReleaseApp writes the example app with a Procfile release line running
// release.sh, which exits with code, and config var MARK=mark.
func writeReleaseApp(t *testing.T, dir, app, mark string, code int) {
	t.Helper()
	procfile := "web: thin start --rackup config.ru --address 0.0.0.0 --port $PORT --environment production\nrelease: sh release.sh\n"
	for name, body := range map[string]string{"Procfile": procfile, "release.sh": releaseScript, "exit-code": fmt.Sprintf("%d\n", code)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeSpec(t, dir, webSpec(app, fmt.Sprintf("  config {\n    MARK = %q\n  }", mark)))
}

// TestReleasePhase deploys an app whose Procfile has a release line, with the app's
// deploy token (ACLs on), through the router under an open-loop load:
//   - v1's release phase runs with v1's config, its output streams to the deploy, and
//     it ends before the first dyno is created; it is a one-off job, never a process
//     type with dynos;
//   - v2's release phase exits 3: the deploy fails saying so, v2 is never registered,
//     v1 keeps serving every request of the load, `dyno releases` lists v2 as failed
//     with why, and `dyno logs` shows its output as dyno release.v2;
//   - v3's release phase runs out of --release-timeout and is stopped, the same way;
//   - v4 succeeds: a failed release keeps its number, and v4's dynos start only after
//     its release phase ended.
func TestReleasePhase(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t, harness.WithRouter(t))
	consul, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	const app = "migrator"
	dir := harness.CopyExample(t, app)
	writeReleaseApp(t, dir, app, "one", 0)
	// The operator makes the app a tenant; its owner deploys it with its deploy token.
	c := deployTokenCLI(t, g, app)
	nomad := appNomad(t, g, app)

	out := c.must("deploy", dir)
	if !strings.Contains(out, "release phase of mark one starts") || !strings.Contains(out, "release phase of mark one ends with 0") {
		t.Errorf("the deploy did not show the release phase's output with the new config:\n%s", out)
	}
	if i, j := strings.Index(out, "ends with 0"), strings.Index(out, "Releasing migrator v1"); i < 0 || j < i {
		t.Errorf("the release was registered before its release phase ended:\n%s", out)
	}
	passingDynos(t, consul, app, 2, time.Minute)
	job, _, err := nomad.Jobs().Info(app, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range job.TaskGroups {
		if *tg.Name == "release" {
			t.Errorf("the release process type is a task group of the app's job, with %d dynos", *tg.Count)
		}
	}
	phase := lastReleasePhase(t, nomad, app, "v1")
	if phase.job.Meta[deploy.MetaProcess] != deploy.OneOffProcess || phase.job.Meta[deploy.MetaApp] != app {
		t.Errorf("the release phase's job meta is %v, want a one-off dyno of %s for metering", phase.job.Meta, app)
	}
	assertPhaseBeforeDynos(t, nomad, app, phase, "v1")
	// The phase's copy of the release's environment, credentials included, is gone.
	if _, _, err := nomad.Variables().Read("nomad/jobs/"+*phase.job.ID, nil); !errors.Is(err, nomadapi.ErrVariablePathNotFound) {
		t.Errorf("the release phase's copy of the environment is still readable after it ended: %v", err)
	}

	// v2: the release phase fails, under load.
	load := multihost.StartLoad(g.Options.RouterAddr(), app+".localhost", "/sleep?ms=20", 20)
	defer load.Stop()
	writeReleaseApp(t, dir, app, "two", 3)
	code, stdout, stderr := c.run("deploy", dir)
	if code == 0 || !strings.Contains(stdout, "release phase of mark two ends with 3") || !strings.Contains(stderr, "exited with status 3") || !strings.Contains(stderr, "nothing was released") {
		t.Errorf("a deploy whose release phase exits 3: exit %d, stdout:\n%s\nstderr:\n%s\nwant a failure naming status 3 after the phase's output", code, stdout, stderr)
	}
	// v3: the release phase runs out of time.
	if err := os.WriteFile(filepath.Join(dir, "release.sh"), []byte("echo sleeping forever\nexec sleep 600\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = c.run("deploy", "--release-timeout", "20s", dir)
	if code == 0 || !strings.Contains(stdout, "sleeping forever") || !strings.Contains(stderr, "did not finish within 20s") {
		t.Errorf("a deploy whose release phase outlives --release-timeout: exit %d, stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	s := allAnswered(t, load, "v1 while v2 and v3 failed their release phases")
	for d, n := range s.ByDyno {
		if n > 0 && !strings.HasPrefix(d, "web.") {
			t.Errorf("%d requests answered by %s", n, d)
		}
	}
	if job, _, err = nomad.Jobs().Info(app, nil); err != nil || job.Meta[deploy.MetaRelease] != "v1" || *job.Version != 0 {
		t.Errorf("after two failed release phases the app's job is at %s (version %d, %v), want v1 and no other version", job.Meta[deploy.MetaRelease], *job.Version, err)
	}

	var releases []cli.ReleaseInfo
	if err := json.Unmarshal([]byte(c.must("releases", "--json")), &releases); err != nil {
		t.Fatal(err)
	}
	if len(releases) != 3 {
		t.Fatalf("dyno releases lists %+v, want v3 and v2 failed and v1 current", releases)
	}
	if r := releases[0]; r.Version != "v3" || r.Status != "failed" || !strings.Contains(r.Reason, "did not finish within 20s") || r.Current {
		t.Errorf("the newest release is %+v, want v3 failed for its timeout", r)
	}
	if r := releases[1]; r.Version != "v2" || r.Status != "failed" || !strings.Contains(r.Reason, "exited with status 3") || r.Current {
		t.Errorf("the second release is %+v, want v2 failed with status 3", r)
	}
	if r := releases[2]; r.Version != "v1" || r.Status != "" || !r.Current {
		t.Errorf("the oldest release is %+v, want v1, current", r)
	}
	if text := c.must("releases"); !strings.Contains(text, "failed: sh release.sh of migrator v2 exited with status 3") {
		t.Errorf("dyno releases does not say why v2 failed:\n%s", text)
	}
	logs := c.must("logs", "--dyno", "release.v2")
	if !strings.Contains(logs, "release.v2") || !strings.Contains(logs, "release phase of mark two ends with 3") {
		t.Errorf("dyno logs --dyno release.v2 does not show the failed release phase's output:\n%s", logs)
	}
	if all := c.must("logs", "--process", "release"); !strings.Contains(all, "release.v3") || !strings.Contains(all, "sleeping forever") {
		t.Errorf("dyno logs does not show the release phase of v3:\n%s", all)
	}

	// v4: a release phase that succeeds, after the failed ones.
	writeReleaseApp(t, dir, app, "four", 0)
	if out := c.must("deploy", dir); !strings.Contains(out, "migrator v4 is released and healthy") {
		t.Errorf("the deploy after two failed releases did not make v4:\n%s", out)
	}
	assertPhaseBeforeDynos(t, nomad, app, lastReleasePhase(t, nomad, app, "v4"), "v4")
	dynos := passingDynos(t, consul, app, 2, time.Minute)
	if r := dynos["web.1"].Service.Meta["release"]; r != "v4" {
		t.Errorf("web.1 runs %s, want v4", r)
	}
}

// TestFirstReleasePhaseFails: an app's first deploy whose release phase fails
// registers no job, yet `dyno releases` lists v1 as failed and `dyno logs` shows the
// phase's output; the next deploy is v2.
func TestFirstReleasePhaseFails(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t)
	const app = "firstfail"
	dir := harness.CopyExample(t, app)
	writeReleaseApp(t, dir, app, "one", 1)
	c := newCLI(t, g, app)
	if code, _, stderr := c.run("deploy", dir); code == 0 || !strings.Contains(stderr, "of firstfail v1 exited with status 1") {
		t.Fatalf("a first deploy whose release phase exits 1: exit %d, stderr:\n%s", code, stderr)
	}
	if _, _, err := appNomad(t, g, app).Jobs().Info(app, nil); err == nil {
		t.Error("the failed first release registered the app's job")
	}
	var releases []cli.ReleaseInfo
	if err := json.Unmarshal([]byte(c.must("releases", "--json")), &releases); err != nil {
		t.Fatal(err)
	}
	if len(releases) != 1 || releases[0].Version != "v1" || releases[0].Status != "failed" || releases[0].Current {
		t.Errorf("dyno releases lists %+v, want v1 failed", releases)
	}
	if logs := c.must("logs", "--process", "release"); !strings.Contains(logs, "release.v1: release phase of mark one ends with 1") {
		t.Errorf("dyno logs of an app with no job does not show its release phase:\n%s", logs)
	}
	writeReleaseApp(t, dir, app, "two", 0)
	if out := c.must("deploy", dir); !strings.Contains(out, "firstfail v2 is released and healthy") {
		t.Errorf("the deploy after a failed first release:\n%s", out)
	}
}

type releasePhaseJob struct {
	job   *nomadapi.Job
	alloc *nomadapi.Allocation
}

// lastReleasePhase finds the job and allocation of release's release phase.
func lastReleasePhase(t *testing.T, nomad *nomadapi.Client, app, release string) releasePhaseJob {
	t.Helper()
	stubs, _, err := nomad.Jobs().PrefixList(app + "-run-")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stubs {
		job, _, err := nomad.Jobs().Info(s.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if job.Meta[deploy.MetaReleasePhase] != release {
			continue
		}
		allocs, _, err := nomad.Jobs().Allocations(s.ID, false, nil)
		if err != nil || len(allocs) != 1 {
			t.Fatalf("release phase %s has %d allocations (%v), want 1", s.ID, len(allocs), err)
		}
		alloc, _, err := nomad.Allocations().Info(allocs[0].ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		return releasePhaseJob{job: job, alloc: alloc}
	}
	t.Fatalf("no release phase job of %s %s among %d one-off jobs", app, release, len(stubs))
	return releasePhaseJob{}
}

// assertPhaseBeforeDynos checks that the release phase ended (exit 0) before the first
// dyno of release was created.
func assertPhaseBeforeDynos(t *testing.T, nomad *nomadapi.Client, app string, phase releasePhaseJob, release string) {
	t.Helper()
	st := phase.alloc.TaskStates["release"]
	if st == nil || st.State != "dead" || st.Failed || phase.alloc.ClientStatus != nomadapi.AllocClientStatusComplete {
		t.Fatalf("the release phase of %s is %s (%+v), want complete", release, phase.alloc.ClientStatus, st)
	}
	versions, _, _, err := nomad.Jobs().Versions(app, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	ofRelease := map[uint64]bool{}
	for _, v := range versions {
		ofRelease[*v.Version] = v.Meta[deploy.MetaRelease] == release
	}
	allocs, _, err := nomad.Jobs().Allocations(app, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range allocs {
		if !ofRelease[a.JobVersion] {
			continue
		}
		n++
		if created := time.Unix(0, a.CreateTime); !created.After(st.FinishedAt) {
			t.Errorf("dyno %s of %s was created at %s, before its release phase ended at %s", a.Name, release, created.Format(time.RFC3339Nano), st.FinishedAt.Format(time.RFC3339Nano))
		}
	}
	if n == 0 {
		t.Errorf("no dyno of %s", release)
	}
}

// allAnswered stops the load once it has had 20 more answers, and checks that it sent
// at least 100 requests, every one answered 200 (by what).
func allAnswered(t *testing.T, load *multihost.Load, what string) multihost.Summary {
	t.Helper()
	waitMoreAnswers(t, load, 20)
	s := multihost.Summarize(load.Stop())
	t.Logf("under load, %s: %s", what, s)
	if s.Sent < 100 || s.FailedTotal() != 0 {
		t.Errorf("want every request answered 200 by %s; got %s", what, s)
	}
	return s
}

// waitMoreAnswers waits until the load has had n more answers: the requests in flight
// when a change ended have been answered.
func waitMoreAnswers(t *testing.T, load *multihost.Load, n int) {
	t.Helper()
	sent := load.Answered()
	testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("%d more answers to the load", n), func() error {
		if got := load.Answered() - sent; got < n {
			return fmt.Errorf("the load stalled: %d answers", got)
		}
		return nil
	})
}
