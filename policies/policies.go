// Package policies holds the Nomad and Consul ACL policies of a grid, one file each, and
// the names they are created under. Every token a grid hands out is made from these
// files, so what a component may do is read here, not in code.
package policies

import (
	"embed"
	"fmt"
	"strings"

	"github.com/dynogrid/dynogrid/internal/appspec"
)

//go:embed consul/*.hcl nomad/*.hcl
var files embed.FS

// Consul policies: the file consul/<name>.hcl is created as policy dynogrid-<name>.
const (
	ConsulAgent   = "consul-agent"
	ConsulNomad   = "nomad"
	ConsulRouter  = "router"
	ConsulCluster = "router-cluster"
	ConsulMeter   = "meter"
	ConsulUsage   = "usage"
	// ConsulAutoscaler finds the routers of a cluster.
	ConsulAutoscaler = "autoscaler"
)

// Nomad policies: the file nomad/<name>.hcl is created as policy dynogrid-<name>.
const (
	NomadMeter          = "meter"
	NomadRouter         = "router"
	NomadAddonMemcached = "addon-memcached"
	NomadLogDrain       = "logdrain"
	NomadAutoscaler     = "autoscaler"
)

// AddonNamespace is the Nomad namespace of the add-ons' own jobs (memcached servers).
const AddonNamespace = "dyno-addons"

// Name is the name a grid gives the policy made from file name.
func Name(name string) string { return "dynogrid-" + name }

// Consul returns the rules of a Consul policy.
func Consul(name string) string { return mustRead("consul/" + name + ".hcl") }

// Nomad returns the rules of a Nomad policy.
func Nomad(name string) string { return mustRead("nomad/" + name + ".hcl") }

// AppDeploy is the policy of an app's deploy tokens: the app's namespace and nothing else.
func AppDeploy(app string) (name, rules string, err error) {
	rules, err = forApp("nomad/app-deploy.hcl", app)
	return "app-" + app + "-deploy", rules, err
}

// AppDynos is the policy bound to the app's job through its workload identity: the
// dynos read the app's own variables.
func AppDynos(app string) (name, rules string, err error) {
	rules, err = forApp("nomad/app-dynos.hcl", app)
	return "app-" + app + "-dynos", rules, err
}

// forApp fills in the app's name. A valid app name is lowercase letters, digits and
// dashes, so it cannot change a policy's structure.
func forApp(file, app string) (string, error) {
	if err := appspec.ValidateAppName(app); err != nil {
		return "", err
	}
	return strings.ReplaceAll(mustRead(file), "APP", app), nil
}

func mustRead(path string) string {
	b, err := files.ReadFile(path)
	if err != nil {
		panic(fmt.Sprintf("policies: no policy file %s", path))
	}
	return string(b)
}
