// Package appspec reads an app's spec: an HCL file with one `app` block, or a directory
// that holds only a Procfile. Every problem is an hcl.Diagnostic with file:line:col and a
// sentence that says what to write instead.
package appspec

import (
	"time"
)

// Defaults for what a spec leaves out.
const (
	DefaultMemoryMB = 512
	DefaultTimeout  = 30 * time.Second
	// SpecFile is the spec a directory's deploy looks for before its Procfile.
	SpecFile = "dyno.hcl"
	// ReleaseProcess is the process type that runs the release phase.
	ReleaseProcess = "release"
)

// Spec is an app as the deployer needs it: every default applied, every path absolute.
type Spec struct {
	Name string `json:"name"`
	// Dir is the absolute path of the app's source directory, packed into its slug.
	Dir string `json:"dir"`
	// Processes are the app's process types, sorted by name.
	Processes []Process `json:"processes"`
	// Release is the release phase's command (the `release` process type of the
	// Procfile or the spec), run once per release in a one-off dyno before the new
	// formation starts; nil when the app has none. It is never a process type with dynos.
	Release *Process          `json:"release,omitempty"`
	Config  map[string]string `json:"config,omitempty"`
	Addons  []Addon           `json:"addons,omitempty"`
	// Schedules are one-off dynos run on a cron schedule (schedule.go).
	Schedules []Schedule `json:"schedules,omitempty"`
	// Domains are custom domains the router routes to the web dynos, besides
	// <name>.<router domain>.
	Domains []string `json:"domains,omitempty"`
	// Timeout is the router's request timeout for this app (H12).
	Timeout time.Duration `json:"timeout"`
	// Buildpacks build the app, in this order; none: the first built-in buildpack that
	// detects the app (buildpacks.go).
	Buildpacks []Buildpack `json:"buildpacks,omitempty"`
	// Stack is what the app's slug needs of the stack, when buildpacks built it.
	Stack *Stack `json:"stack,omitempty"`
}

// Process is one process type: the command its dynos run and how many of them.
type Process struct {
	Name    string `json:"name"`
	Command string `json:"command"`
	Count   int    `json:"count"`
	// Min and Max bound the dyno count wherever it is changed: `dyno ps:scale`, the
	// Nomad UI's count stepper, Nomad's job scale API.
	Min      int `json:"min"`
	Max      int `json:"max"`
	MemoryMB int `json:"memory_mb"`
	// HealthCheck is the HTTP path Consul checks on web dynos.
	HealthCheck string `json:"health_check,omitempty"`
	// Size is SizeDedicated or SizeShared.
	Size string `json:"size"`
	// Autoscale, on web only, lets the autoscaler set the count within Min and Max.
	Autoscale *Autoscale `json:"autoscale,omitempty"`
}

// Dyno sizes. Every dyno runs on exactly one core; a dedicated dyno has its core to
// itself (Nomad reserves it: resources { cores = 1 }), a shared dyno shares its core
// with other shared dynos (a CPU share), for grids with fewer cores than dynos.
const (
	SizeDedicated = "dedicated"
	SizeShared    = "shared"
)

// Addon is an add-on the app asks for.
type Addon struct {
	// Service is the add-on's plugin name (postgres, memcached, ...).
	Service string `json:"service"`
	// Name is the attachment's name, unique within the app (defaults to Service).
	Name string `json:"name"`
	Plan string `json:"plan,omitempty"`
}

// Process returns the process type called name, or nil.
func (s *Spec) Process(name string) *Process {
	for i := range s.Processes {
		if s.Processes[i].Name == name {
			return &s.Processes[i]
		}
	}
	return nil
}
