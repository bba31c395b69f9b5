// Package deploy turns an app spec into a Nomad job, following the deployer's contract:
// job ID = app name, one task group per process type, driver "dyno", one core, a memory
// limit, SIGTERM with a 30 s grace period, dynos spread over hosts, and web dynos
// registered in Consul as <app>-web for the router (docs/design.md).
package deploy

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/internal/slug"
	"github.com/dynogrid/dynogrid/internal/tenancy"
	nomadapi "github.com/hashicorp/nomad/api"
)

// Meta keys the deployer sets on the job and its groups.
const (
	MetaApp     = "dyno.app"
	MetaProcess = "dyno.process"
	MetaRelease = "dyno.release"
	// MetaEnv names the Nomad Variable that holds the release's config and add-on
	// variables.
	MetaEnv = "dyno.env"
	// MetaDescription says what made the release (deploy, config change, rollback).
	MetaDescription = "dyno.description"
	// MetaSlug is the release's slug checksum.
	MetaSlug = "dyno.slug"

	// DriverName is the dyno task driver's, the only one an app's namespace allows.
	DriverName = tenancy.DynoDriver
	// ShutdownDelay is how long a web dyno stays up after leaving Consul.
	ShutdownDelay = 3 * time.Second
	KillTimeout   = 30 * time.Second
	PortLabel     = "http"
)

// Release is everything that makes one release of an app.
type Release struct {
	Spec *appspec.Spec
	Slug *slug.Slug
	// Version is the release's number: v1 is the first.
	Version int
	// EnvPath is the Nomad Variable path holding config and add-on variables; empty
	// when the app has none.
	EnvPath     string
	Description string
	// Counts overrides the spec's dyno counts (to keep the current formation).
	Counts map[string]int
}

// ReleaseName is how a release is shown and tagged: v1, v2, ...
func ReleaseName(v int) string { return fmt.Sprintf("v%d", v) }

// ServiceName is the Consul service of an app's web dynos.
func ServiceName(app string) string { return app + "-web" }

// Job builds the Nomad job of a release.
func Job(r Release) *nomadapi.Job {
	spec := r.Spec
	release := ReleaseName(r.Version)
	job := nomadapi.NewServiceJob(spec.Name, spec.Name, "global", 50)
	job.Namespace = ptr(tenancy.Namespace(spec.Name))
	job.Datacenters = []string{"*"}
	job.Meta = map[string]string{
		MetaApp:         spec.Name,
		MetaRelease:     release,
		MetaSlug:        r.Slug.SHA256,
		MetaDescription: r.Description,
	}
	if r.EnvPath != "" {
		job.Meta[MetaEnv] = r.EnvPath
	}
	addStack(job, spec.Stack)
	for _, p := range spec.Processes {
		count := p.Count
		if c, ok := r.Counts[p.Name]; ok {
			count = withinRange(c, p)
		}
		job.AddTaskGroup(group(r, p, count, release))
	}
	return job
}

func group(r Release, p appspec.Process, count int, release string) *nomadapi.TaskGroup {
	tg := nomadapi.NewTaskGroup(p.Name, count)
	tg.Meta = map[string]string{MetaProcess: p.Name}
	tg.Scaling = scaling(p)
	// Spread the app's dynos over hosts: with two dynos the app survives the loss of one.
	tg.Spreads = []*nomadapi.Spread{{Attribute: "${node.unique.id}", Weight: ptr(int8(100))}}
	// Heroku-like crash handling: restart in place a few times with a delay, then
	// reschedule elsewhere with exponential backoff, forever.
	tg.RestartPolicy = &nomadapi.RestartPolicy{
		Attempts: ptr(3), Interval: ptr(5 * time.Minute), Delay: ptr(2 * time.Second), Mode: ptr("fail"),
	}
	tg.ReschedulePolicy = &nomadapi.ReschedulePolicy{
		Unlimited: ptr(true), DelayFunction: ptr("exponential"),
		Delay: ptr(5 * time.Second), MaxDelay: ptr(5 * time.Minute),
	}
	// A release starts one canary dyno beside the running ones and replaces them only
	// once it is healthy, one at a time: a release whose dynos cannot start never takes
	// the previous one down, and Nomad reverts it.
	tg.Update = &nomadapi.UpdateStrategy{
		MaxParallel: ptr(1), Canary: ptr(1), AutoPromote: ptr(true), HealthCheck: ptr("checks"),
		MinHealthyTime: ptr(2 * time.Second), HealthyDeadline: ptr(2 * time.Minute),
		ProgressDeadline: ptr(5 * time.Minute), AutoRevert: ptr(true),
	}
	if p.Name != "web" {
		tg.Update.HealthCheck = ptr("task_states")
	}

	// Every dyno has a network namespace of its own on the Nomad bridge; the dyno
	// driver's firewall keeps it from the grid and from other dynos.
	tg.Networks = []*nomadapi.NetworkResource{dynoNetwork(p.Name == "web")}

	task := nomadapi.NewTask(p.Name, DriverName)
	task.Config = map[string]interface{}{
		"command":     "/bin/sh",
		"args":        []string{"-c", ShellCommand(p.Command)},
		"slug":        r.Slug.Path,
		"slug_sha256": r.Slug.SHA256,
	}
	task.Resources = resources(p)
	task.KillSignal = "SIGTERM"
	task.KillTimeout = ptr(KillTimeout)
	task.Env = map[string]string{"HOME": "/app"}
	task.Meta = map[string]string{MetaRelease: release}
	task.Templates = []*nomadapi.Template{envTemplate(p.Name, r.EnvPath)}
	keepLogs(task, 5, 10)

	if p.Name == "web" {
		task.Env["PORT"] = "${NOMAD_PORT_" + PortLabel + "}"
		task.Services = []*nomadapi.Service{webService(r, p, release)}
		// A web dyno that stops (scale-down, new release) leaves Consul first and gets
		// SIGTERM only after the router has taken it out of routing.
		task.ShutdownDelay = ShutdownDelay
	}
	tg.AddTask(task)
	return tg
}

// dynoNetwork is a dyno's group network: mode "none", a network namespace that Nomad
// makes and the dyno driver puts on the dynos' bridge (driver/dynonet: at once, and
// side by side with other new dynos, where Nomad's bridge mode runs the CNI plugins
// for one allocation at a time), and for web dynos a dynamic host port mapped to the
// same port number in the dyno (to = -1), so that PORT is both what the dyno binds and
// what Consul advertises with the host's address.
func dynoNetwork(web bool) *nomadapi.NetworkResource {
	n := &nomadapi.NetworkResource{Mode: "none"}
	if web {
		n.DynamicPorts = []nomadapi.Port{{Label: PortLabel, To: -1}}
	}
	return n
}

// SharedCPU is the CPU share, in MHz, of a shared dyno.
const SharedCPU = 200

// resources gives a dedicated dyno a core of its own, and a shared dyno a CPU share; the
// driver binds either to exactly one core.
func resources(p appspec.Process) *nomadapi.Resources {
	r := &nomadapi.Resources{MemoryMB: ptr(p.MemoryMB)}
	if p.Size == appspec.SizeShared {
		r.CPU = ptr(SharedCPU)
	} else {
		r.Cores = ptr(1)
	}
	return r
}

func webService(r Release, p appspec.Process, release string) *nomadapi.Service {
	meta := map[string]string{
		// DYNO comes from the task's environment (rendered by the env template).
		"dyno":    "${DYNO}",
		"release": release,
		"timeout": r.Spec.Timeout.String(),
	}
	if len(r.Spec.Domains) > 0 {
		meta["domains"] = strings.Join(r.Spec.Domains, ",")
	}
	return &nomadapi.Service{
		Name:      ServiceName(r.Spec.Name),
		PortLabel: PortLabel,
		Provider:  "consul",
		Tags:      []string{"dyno", "app=" + r.Spec.Name},
		Meta:      meta,
		Checks:    []nomadapi.ServiceCheck{healthCheck(p.HealthCheck)},
	}
}

// envTemplate renders the dyno's environment: DYNO (web.1, web.2, ... from the
// allocation's slot) and the release's config and add-on variables from its Nomad
// Variable, so that credentials never stand in the job spec.
func envTemplate(process, envPath string) *nomadapi.Template {
	return dynoEnvTemplate(process+`.{{ env "NOMAD_ALLOC_INDEX" | parseInt | add 1 }}`, envPath)
}

// dynoEnvTemplate renders DYNO, the dyno's name or a template expression, and the
// variables at envPath.
func dynoEnvTemplate(dyno, envPath string) *nomadapi.Template {
	var b strings.Builder
	fmt.Fprintf(&b, "DYNO=%s\n", dyno)
	if envPath != "" {
		fmt.Fprintf(&b, "{{ with nomadVar %q }}{{ range .Tuples }}{{ .K }}={{ .V | printf \"%%s\" | toJSON }}\n{{ end }}{{ end }}", envPath)
	}
	return &nomadapi.Template{
		EmbeddedTmpl: ptr(b.String()),
		DestPath:     ptr("secrets/dyno.env"),
		Envvars:      ptr(true),
		ChangeMode:   ptr("restart"),
	}
}

// ShellCommand is the /bin/sh script that runs a Procfile command. A simple command is
// exec'd, so that it is the dyno's main process and gets SIGTERM itself; a compound
// one (with ;, &&, | ...) runs under the shell as written.
func ShellCommand(command string) string {
	if strings.ContainsAny(command, ";&|\n()`") {
		return command
	}
	return "exec " + command
}

// Counts returns the dyno count of each task group of job.
func Counts(job *nomadapi.Job) map[string]int {
	counts := map[string]int{}
	for _, tg := range job.TaskGroups {
		if tg.Name != nil && tg.Count != nil {
			counts[*tg.Name] = *tg.Count
		}
	}
	return counts
}

// SortedKeys returns m's keys in order.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func ptr[T any](v T) *T { return &v }

// keepLogs bounds a dyno's log files to files of sizeMB each, of stdout and of stderr.
// The dyno driver keeps them itself, by its task config (and within its plugin
// settings); the logs block tells Nomad the disk they take.
func keepLogs(task *nomadapi.Task, files, sizeMB int) {
	task.Config["log_max_files"] = files
	task.Config["log_max_file_size_mb"] = sizeMB
	task.LogConfig = &nomadapi.LogConfig{MaxFiles: ptr(files), MaxFileSizeMB: ptr(sizeMB)}
}
