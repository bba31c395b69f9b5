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

// DynoDriver is the only task driver an app's namespace allows: its deploy token writes
// its jobs, and any other driver of a client (the exec driver that runs the meter) would
// run the app's code outside the dyno sandbox, in the host's network.
const DynoDriver = "dyno"

// appNamespace is the namespace of app as the grid keeps it.
func appNamespace(app string) *nomadapi.Namespace {
	return &nomadapi.Namespace{Name: Namespace(app), Description: "Dynogrid app " + app,
		Capabilities: &nomadapi.NamespaceCapabilities{EnabledTaskDrivers: []string{DynoDriver}}}
}

// EnsureApp makes app a tenant of the grid: its namespace (which allows the dyno
// driver only, also when it was made before it did), the policy of its deploy tokens,
// and the policy bound to its job with which its dynos read the app's variables. It is
// idempotent. c must hold a management token.
func EnsureApp(ctx context.Context, c *nomadapi.Client, app string) error {
	if err := EnsureNamespace(ctx, c, appNamespace(app)); err != nil {
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

// Apps lists the grid's apps: the Nomad namespaces but "default" and the add-ons' own.
func Apps(ctx context.Context, c *nomadapi.Client) ([]string, error) {
	nss, _, err := c.Namespaces().List((&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("failed to list the apps' namespaces: %w", err)
	}
	var apps []string
	for _, ns := range nss {
		if ns.Name != "default" && ns.Name != policies.AddonNamespace {
			apps = append(apps, ns.Name)
		}
	}
	return apps, nil
}
