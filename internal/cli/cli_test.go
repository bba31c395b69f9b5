package cli

import (
	"bytes"
	"strings"
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/internal/deploy"
)

func TestParseCounts(t *testing.T) {
	t.Parallel()
	got, err := parseCounts([]string{"web=3", "worker=0"})
	if err != nil || got["web"] != 3 || got["worker"] != 0 {
		t.Fatalf("parseCounts = %v, %v", got, err)
	}
	for _, bad := range [][]string{{"web"}, {"web=-1"}, {"web=two"}, {"=3"}, {"web=1", "web=2"}, {"web=101"}, {"web=+1"}} {
		if _, err := parseCounts(bad); err == nil {
			t.Errorf("parseCounts(%q) succeeded, want an error", bad)
		}
	}
}

func TestShellJoin(t *testing.T) {
	t.Parallel()
	if got := shellJoin([]string{"rake db:migrate"}); got != "rake db:migrate" {
		t.Errorf("one argument is a command line, got %q", got)
	}
	if got := shellJoin([]string{"echo", "it's", "$HOME"}); got != `'echo' 'it'\''s' '$HOME'` {
		t.Errorf("got %q", got)
	}
}

func TestLessDyno(t *testing.T) {
	t.Parallel()
	if !lessDyno("web.2", "web.10") || lessDyno("web.10", "web.2") || !lessDyno("clock.5", "web.1") {
		t.Error("dynos must sort by process type, then by number")
	}
}

// TestBadArguments runs commands with wrong arguments: each must exit non-zero with a
// message that names the problem, before talking to any agent.
func TestBadArguments(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"ps:scale"}, "which process types?"},
		{[]string{"ps:scale", "web=lots"}, "web=lots: the count must be a whole number"},
		{[]string{"ps:scale", "web=1000"}, "web=1000: the count must be a whole number from 0 to 100"},
		{[]string{"ps:scale", "web=2", "--timeout", "-5s"}, `invalid value "-5s" for flag -timeout: want a positive duration`},
		{[]string{"ps:scale", "web=2", "--timeout", "0s"}, `invalid value "0s" for flag -timeout: want a positive duration`},
		{[]string{"config:set"}, "which config vars?"},
		{[]string{"config:set", "NOVALUE"}, `"NOVALUE" is not a config var`},
		{[]string{"config:unset", "A=1"}, "takes names only"},
		{[]string{"rollback", "vx"}, `"vx" is not a release`},
		{[]string{"ps", "--app", "Bad_Name"}, "is not an app name"},
		{[]string{"ps", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"apps:destroy", "--app", "shop"}, "--confirm shop"},
		{[]string{"logs", "--num", "0", "--app", "shop"}, "--num 0"},
		{[]string{"run", "--app", "shop"}, "which command?"},
		{[]string{"deploy", "/nonexistent/spec.hcl"}, "Cannot read app spec"},
		{[]string{"deploy", "a", "b"}, "at most one path"},
		{[]string{"dev", "up", "extra"}, `unexpected argument "extra"`},
		{[]string{"status", "extra"}, `unexpected argument "extra"`},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		code := Run(c.args, &out, &errOut)
		if code == 0 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("dyno %s: exit %d, stderr %q; want non-zero and %q", strings.Join(c.args, " "), code, errOut.String(), c.want)
		}
	}
}

// TestStatusNamesAnUnreachableGrid: dyno status against an address where nothing
// listens says which address it could not reach.
func TestStatusNamesAnUnreachableGrid(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	code := Run([]string{"status", "--nomad-addr", "http://127.0.0.1:1"}, &out, &errOut)
	if want := "failed to reach Nomad at http://127.0.0.1:1"; code == 0 || !strings.Contains(errOut.String(), want) {
		t.Errorf("exit %d, stderr %q; want non-zero and %q", code, errOut.String(), want)
	}
}

func TestParseArgsTakesFlagsAnywhere(t *testing.T) {
	t.Parallel()
	var m meta
	fs := m.flagSet("x")
	if err := parseArgs(fs, []string{"v3", "--app", "shop", "extra", "--json", "--", "--not-a-flag", "x"}); err != nil {
		t.Fatal(err)
	}
	if m.app != "shop" || !m.json || strings.Join(fs.Args(), " ") != "v3 extra --not-a-flag x" {
		t.Errorf("app %q json %v args %q", m.app, m.json, fs.Args())
	}
}

// dyno plan shows the job's diff and the schedules a deploy adds, edits and deletes.
func TestRenderPlanShowsSchedules(t *testing.T) {
	t.Parallel()
	plan := &deploy.Plan{
		JobPlanResponse: &nomadapi.JobPlanResponse{Diff: &nomadapi.JobDiff{Type: "Edited", TaskGroups: []*nomadapi.TaskGroupDiff{
			{Type: "Edited", Name: "web", Updates: map[string]uint64{"create/destroy update": 2}}}}},
		Schedules: []deploy.ScheduleDiff{
			{Type: "Added", Name: "added", Schedule: &appspec.Schedule{Name: "added", Cron: "*/5 * * * *", Command: "rake poll", MemoryMB: 512}},
			{Type: "Edited", Name: "nightly", Fields: []*nomadapi.FieldDiff{{Type: "Edited", Name: "cron", Old: "0 3 * * *", New: "0 4 * * *"}}},
			{Type: "Deleted", Name: "old", Schedule: &appspec.Schedule{Name: "old", Cron: "@weekly", Command: "rake weekly", MemoryMB: 256}},
		},
	}
	want := `shop: edited
  process web: edited (2 create/destroy update)
  schedule added: added ("*/5 * * * *" runs ` + "`rake poll`" + `, 512 MB)
  schedule nightly: edited
    cron: "0 3 * * *" -> "0 4 * * *"
  schedule old: deleted ("@weekly" runs ` + "`rake weekly`" + `, 256 MB)`
	if got := renderPlan("shop", plan); got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
	if got := renderPlan("shop", &deploy.Plan{JobPlanResponse: &nomadapi.JobPlanResponse{}}); got != "No changes to shop." {
		t.Errorf("empty plan: %q", got)
	}
}
