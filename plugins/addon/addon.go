// Package addon is the SDK for Dynogrid add-ons. An add-on is a program that gives apps a
// service (a database, a cache, an API key...) through environment variables. To write
// one, implement Addon and call Serve from main:
//
//	func main() { addon.Serve(&myAddon{}) }
//
// The host (the `dyno` CLI) finds the program in its plugin directory as
// dyno-addon-<name>, starts it with hashicorp/go-plugin over gRPC (mutual TLS on),
// calls Configure once with the operator's settings, then one of Describe, Provision
// or Deprovision, and stops it. Programs are short-lived: keep nothing in memory
// between calls.
package addon

import (
	"context"
)

// Addon is what an add-on author implements.
//
// Provision and Deprovision must be idempotent, keyed by the request ID: the host retries
// a call that crashed or timed out with the same ID, and the answer must be the same
// resource, never a second one. Persist what you made under the request ID before you
// make it (in the resource itself, or with Store in Config.StateDir).
type Addon interface {
	// Configure receives the operator's settings. Return an error naming the setting
	// that is missing or wrong.
	Configure(ctx context.Context, cfg Config) error
	// Describe tells the add-on's name, plans and variables. The host calls it
	// after Configure, so the variables may depend on the settings.
	Describe(ctx context.Context) (Description, error)
	// Provision makes (or finds again) the resource for req.RequestID and returns
	// the variables to give the app: every variable of Description.EnvVars.
	Provision(ctx context.Context, req ProvisionRequest) (Resource, error)
	// Deprovision removes the resource. A resource that is already gone is success.
	Deprovision(ctx context.Context, req DeprovisionRequest) error
}

// Config is the operator's configuration of one add-on.
type Config struct {
	// Settings come from the operator's add-on configuration file, as strings.
	Settings map[string]string
	// StateDir is a directory private to this add-on that outlives the process,
	// or "" when the host has none.
	StateDir string
}

// Description tells the host and users what an add-on offers.
type Description struct {
	// Name is the add-on's name as typed in `dyno addons:create NAME`: lowercase
	// letters, digits and dashes, starting with a letter, and the binary is named
	// dyno-addon-<Name>.
	Name    string
	Version string
	Summary string
	Plans   []Plan
	// DefaultPlan is used when the user names none; "" means the first plan.
	DefaultPlan string
	// EnvVars lists every variable Provision sets, e.g. DATABASE_URL.
	EnvVars []string
}

// Plan is one size or flavour of an add-on.
type Plan struct {
	Name        string
	Description string
}

// ProvisionRequest asks for the resource of one attachment.
type ProvisionRequest struct {
	// RequestID is chosen by the host and stays the same across retries.
	RequestID string
	// App is the app the resource is for.
	App string
	// Plan is one of Description.Plans (the host resolved the default).
	Plan string
	// Name is the attachment's name (e.g. "DATABASE"); informative, may be "".
	Name string
}

// Resource is what Provision made.
type Resource struct {
	// ID identifies the resource for Deprovision; the same for one RequestID.
	ID string
	// Env holds the variables to give the app, exactly Description.EnvVars.
	Env map[string]string
	// Message is an optional line shown to the user.
	Message string
}

// DeprovisionRequest asks to remove a resource.
type DeprovisionRequest struct {
	RequestID  string
	ResourceID string
	App        string
}
