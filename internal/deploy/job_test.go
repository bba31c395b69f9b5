package deploy

import (
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/internal/slug"
	nomadapi "github.com/hashicorp/nomad/api"
)

func testRelease() Release {
	return Release{
		Spec: &appspec.Spec{
			Name: "shop",
			Processes: []appspec.Process{
				{Name: "web", Command: "thin start -p $PORT", Count: 2, Max: appspec.MaxCount, MemoryMB: 256, HealthCheck: "/health"},
				{Name: "worker", Command: "ruby worker.rb", Count: 1, Max: appspec.MaxCount, MemoryMB: 512},
			},
			Domains: []string{"shop.example.com"},
			Timeout: 45 * time.Second,
		},
		Slug:    &slug.Slug{SHA256: strings.Repeat("ab", 32), Path: "/store/abab.tar.gz"},
		Version: 3,
		EnvPath: "nomad/jobs/shop/env/0123456789abcdef",
	}
}

// TestJobFollowsTheDeployerContract checks every point of the deployer's contract
// with Nomad and with the router (docs/design.md, "The deployer's job" and "Web dynos
// in Consul").
func TestJobFollowsTheDeployerContract(t *testing.T) {
	t.Parallel()
	job := Job(testRelease())
	if *job.ID != "shop" || *job.Type != "service" {
		t.Fatalf("job %s of type %s, want service job shop", *job.ID, *job.Type)
	}
	if job.Meta[MetaApp] != "shop" || job.Meta[MetaRelease] != "v3" || job.Meta[MetaEnv] == "" {
		t.Errorf("job meta = %v, want app, release v3 and env", job.Meta)
	}
	if len(job.TaskGroups) != 2 {
		t.Fatalf("%d task groups, want one per process type", len(job.TaskGroups))
	}
	for _, tg := range job.TaskGroups {
		name := *tg.Name
		if tg.Meta[MetaProcess] != name || len(tg.Tasks) != 1 {
			t.Errorf("group %s: meta %v, %d tasks", name, tg.Meta, len(tg.Tasks))
		}
		if len(tg.Spreads) != 1 || tg.Spreads[0].Attribute != "${node.unique.id}" {
			t.Errorf("group %s does not spread its dynos over hosts", name)
		}
		task := tg.Tasks[0]
		if task.Driver != "dyno" || *task.Resources.Cores != 1 || task.KillSignal != "SIGTERM" || *task.KillTimeout != 30*time.Second {
			t.Errorf("task %s: driver %s, cores %d, kill %s after %s", name, task.Driver, *task.Resources.Cores, task.KillSignal, *task.KillTimeout)
		}
		if task.Config["slug_sha256"] != strings.Repeat("ab", 32) || task.Config["command"] != "/bin/sh" {
			t.Errorf("task %s config = %v", name, task.Config)
		}
		if len(tg.Networks) != 1 || tg.Networks[0].Mode != "none" {
			t.Errorf("group %s networks = %+v, want one in mode none: every dyno has its own network namespace, which the driver puts on the bridge", name, tg.Networks)
		}
		assertKeepsLogs(t, task, 5, 10)
		tmpl := *task.Templates[0].EmbeddedTmpl
		if !strings.Contains(tmpl, "DYNO="+name+".") || !strings.Contains(tmpl, `nomadVar "nomad/jobs/shop/env/0123456789abcdef"`) || !*task.Templates[0].Envvars {
			t.Errorf("task %s env template = %q", name, tmpl)
		}
		for k, v := range task.Env {
			if strings.Contains(v, "secret") {
				t.Errorf("env %s carries a value in clear", k)
			}
		}
	}
	web := job.LookupTaskGroup("web")
	if web.Tasks[0].ShutdownDelay != ShutdownDelay {
		t.Errorf("web shutdown delay = %s, want %s: dynos must leave routing before SIGTERM", web.Tasks[0].ShutdownDelay, ShutdownDelay)
	}
	if *web.Count != 2 || *web.Tasks[0].Resources.MemoryMB != 256 || web.Tasks[0].Env["PORT"] != "${NOMAD_PORT_http}" {
		t.Errorf("web: count %d, memory %d, env %v", *web.Count, *web.Tasks[0].Resources.MemoryMB, web.Tasks[0].Env)
	}
	if ports := web.Networks[0].DynamicPorts; len(ports) != 1 || ports[0].Label != "http" || ports[0].To != -1 {
		t.Errorf("web ports = %+v, want the dynamic port http mapped to the same number in the dyno (to = -1)", ports)
	}
	svcs := web.Tasks[0].Services
	if len(svcs) != 1 {
		t.Fatalf("web has %d services, want 1", len(svcs))
	}
	s := svcs[0]
	if s.Name != "shop-web" || strings.Join(s.Tags, ",") != "dyno,app=shop" || s.Meta["dyno"] != "${DYNO}" || s.Meta["release"] != "v3" {
		t.Errorf("web service = %s %v %v", s.Name, s.Tags, s.Meta)
	}
	if s.Meta["domains"] != "shop.example.com" || s.Meta["timeout"] != "45s" {
		t.Errorf("web service meta = %v, want domains and timeout for the router", s.Meta)
	}
	if len(s.Checks) != 1 || s.Checks[0].Type != "http" || s.Checks[0].Path != "/health" {
		t.Errorf("web checks = %+v, want an HTTP check of /health", s.Checks)
	}
	worker := job.LookupTaskGroup("worker")
	if len(worker.Tasks[0].Services) != 0 || worker.Tasks[0].Env["PORT"] != "" || len(worker.Networks[0].DynamicPorts) != 0 {
		t.Error("worker dynos must not register a service or get a port")
	}
}

func TestJobKeepsCounts(t *testing.T) {
	t.Parallel()
	r := testRelease()
	r.Counts = map[string]int{"web": 7}
	job := Job(r)
	if c := Counts(job); c["web"] != 7 || c["worker"] != 1 {
		t.Errorf("counts = %v, want web 7 (kept) and worker 1 (from the spec)", c)
	}
}

func TestSetReleaseAndEnv(t *testing.T) {
	t.Parallel()
	job := Job(testRelease())
	setRelease(job, 4, "Set FOO config vars")
	setEnvPath(job, "nomad/jobs/shop/env/ffff")
	if job.Meta[MetaRelease] != "v4" || job.Meta[MetaEnv] != "nomad/jobs/shop/env/ffff" {
		t.Errorf("meta = %v", job.Meta)
	}
	web := job.LookupTaskGroup("web").Tasks[0]
	if web.Services[0].Meta["release"] != "v4" || !strings.Contains(*web.Templates[0].EmbeddedTmpl, "env/ffff") {
		t.Errorf("web task not updated: %v %q", web.Services[0].Meta, *web.Templates[0].EmbeddedTmpl)
	}
}

func TestEnvPathIsContentAddressed(t *testing.T) {
	t.Parallel()
	a := EnvPath("shop", map[string]string{"A": "1", "B": "2"})
	b := EnvPath("shop", map[string]string{"B": "2", "A": "1"})
	c := EnvPath("shop", map[string]string{"A": "1", "B": "3"})
	d := EnvPath("shop", map[string]string{"A": "1B\x002"})
	if a != b || a == c || a == d || !strings.HasPrefix(a, "nomad/jobs/shop/env/") {
		t.Errorf("paths %s %s %s %s: want equal for equal content, else different", a, b, c, d)
	}
	if EnvPath("shop", nil) != "" {
		t.Error("an empty environment needs no variable")
	}
}

func TestSharedDynoTakesACPUShare(t *testing.T) {
	t.Parallel()
	r := testRelease()
	r.Spec.Processes[1].Size = appspec.SizeShared
	job := Job(r)
	worker := job.LookupTaskGroup("worker").Tasks[0].Resources
	if worker.Cores != nil || worker.CPU == nil || *worker.CPU != SharedCPU {
		t.Errorf("shared worker resources = cores %v cpu %v, want a CPU share of %d and no reserved core", worker.Cores, worker.CPU, SharedCPU)
	}
	web := job.LookupTaskGroup("web").Tasks[0].Resources
	if web.Cores == nil || *web.Cores != 1 || web.CPU != nil {
		t.Errorf("dedicated web resources = cores %v cpu %v, want one reserved core", web.Cores, web.CPU)
	}
}

func TestShellCommand(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"thin start -p $PORT":     "exec thin start -p $PORT",
		"rake db:migrate && thin": "rake db:migrate && thin",
		"echo a; exit 7":          "echo a; exit 7",
		"bin/worker | logger":     "bin/worker | logger",
		"echo $(pwd)":             "echo $(pwd)",
	}
	for in, want := range cases {
		if got := ShellCommand(in); got != want {
			t.Errorf("ShellCommand(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestJobAsksForTheStackItWasBuiltOn constrains a built release, and its release
// phase, to hosts with the build's stack and runtimes; an app packed as it is gets none.
func TestJobAsksForTheStackItWasBuiltOn(t *testing.T) {
	spec := &appspec.Spec{Name: "shop", Processes: []appspec.Process{{Name: "web", Command: "x", Count: 1, MemoryMB: 128}},
		Release: &appspec.Process{Name: "release", Command: "rake db:migrate", MemoryMB: 128}}
	r := Release{Spec: spec, Slug: &slug.Slug{SHA256: strings.Repeat("a", 64), Path: "/s"}, Version: 1}
	if job := Job(r); len(job.Constraints) != 0 || job.Meta[MetaStack] != "" {
		t.Errorf("an app packed as it is got constraints %v", job.Constraints)
	}
	spec.Stack = &appspec.Stack{Name: "debian-12", Ruby: "3.1"}
	for _, job := range []*nomadapi.Job{Job(r), releasePhaseJob("shop-run-1", r, *spec.Release, "")} {
		var got []string
		for _, c := range job.Constraints {
			got = append(got, c.LTarget+" "+c.Operand+" "+c.RTarget)
		}
		want := "${attr.driver.dyno.stack} = debian-12, ${attr.driver.dyno.stack.ruby} regexp ^3\\.1\\."
		if strings.Join(got, ", ") != want || job.Meta[MetaStack] != "debian-12" {
			t.Errorf("job %s: constraints %q, want %q", *job.ID, got, want)
		}
	}
}

// assertKeepsLogs checks that the dyno driver keeps files log files of sizeMB for task,
// and that its job's logs block tells Nomad the same.
func assertKeepsLogs(t *testing.T, task *nomadapi.Task, files, sizeMB int) {
	t.Helper()
	if task.Config["log_max_files"] != files || task.Config["log_max_file_size_mb"] != sizeMB {
		t.Errorf("task %s: the driver keeps %v log files of %v MB, want %d of %d", task.Name, task.Config["log_max_files"], task.Config["log_max_file_size_mb"], files, sizeMB)
	}
	if lc := task.LogConfig; lc == nil || *lc.MaxFiles != files || *lc.MaxFileSizeMB != sizeMB {
		t.Errorf("task %s: logs block %+v, want %d files of %d MB", task.Name, lc, files, sizeMB)
	}
}
