package tenancy

import (
	"context"
	"fmt"

	"github.com/dynogrid/dynogrid/policies"
	nomadapi "github.com/hashicorp/nomad/api"
)

// Namespace is the Nomad namespace of an app: its name. An app is one tenant: its jobs,
// dynos and variables live in its namespace, and its deploy tokens reach nothing else.
func Namespace(app string) string { return app }

// EnsureApp makes app a tenant of the grid: its namespace, the policy of its deploy
// tokens, and the policy bound to its job with which its dynos read the app's variables.
// It is idempotent. c must hold a management token.
func EnsureApp(ctx context.Context, c *nomadapi.Client, app string) error {
	if err := EnsureNamespace(ctx, c, Namespace(app), "Dynogrid app "+app); err != nil {
		return err
	}
	name, rules, err := policies.AppDynos(app)
	if err != nil {
		return err
	}
	bound := &nomadapi.ACLPolicy{Name: name, Rules: rules, Description: "dynos of app " + app,
		JobACL: &nomadapi.JobACL{Namespace: Namespace(app), JobID: app}}
	if err := nomadPolicy(ctx, c, bound); err != nil {
		return err
	}
	name, rules, err = policies.AppDeploy(app)
	if err != nil {
		return err
	}
	return nomadPolicy(ctx, c, &nomadapi.ACLPolicy{Name: name, Rules: rules, Description: "deploy tokens of app " + app})
}

// AppToken creates a deploy token for app, named name: it manages the app and nothing
// else. c must hold a management token.
func AppToken(ctx context.Context, c *nomadapi.Client, app, name string) (string, error) {
	if err := EnsureApp(ctx, c, app); err != nil {
		return "", err
	}
	policy, _, err := policies.AppDeploy(app)
	if err != nil {
		return "", err
	}
	if name == "" {
		name = fmt.Sprintf("deploy %s", app)
	}
	return nomadClientToken(ctx, c, name, []string{policy})
}
