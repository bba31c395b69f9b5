package tenancy

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dynogrid/dynogrid/internal/apierr"
	"github.com/dynogrid/dynogrid/policies"
	nomadapi "github.com/hashicorp/nomad/api"
)

// BootstrapNomad bootstraps the ACL system of a Nomad whose ACLs are on and returns the
// management token. It retries while the servers have no leader yet, until ctx ends.
func BootstrapNomad(ctx context.Context, c *nomadapi.Client) (string, error) {
	var last error
	for {
		tok, _, err := c.ACLTokens().Bootstrap((&nomadapi.WriteOptions{}).WithContext(ctx))
		if err == nil {
			return tok.SecretID, nil
		}
		if strings.Contains(err.Error(), "ACL bootstrap already done") {
			return "", fmt.Errorf("nomad's ACLs were bootstrapped before: use its management token: %w", err)
		}
		last = err
		if err := pause(ctx, 200*time.Millisecond); err != nil {
			return "", fmt.Errorf("failed to bootstrap nomad's ACLs: %w (last: %v)", err, last)
		}
	}
}

// NomadToken creates a client token named name holding the named policies of package
// policies, creating or updating each policy first. c must hold a management token.
func NomadToken(ctx context.Context, c *nomadapi.Client, name string, names ...string) (string, error) {
	full := make([]string, 0, len(names))
	for _, n := range names {
		if err := nomadPolicy(ctx, c, &nomadapi.ACLPolicy{Name: policies.Name(n), Rules: policies.Nomad(n)}); err != nil {
			return "", err
		}
		full = append(full, policies.Name(n))
	}
	return nomadClientToken(ctx, c, name, full)
}

func nomadClientToken(ctx context.Context, c *nomadapi.Client, name string, policyNames []string) (string, error) {
	tok, _, err := c.ACLTokens().Create(&nomadapi.ACLToken{Name: name, Type: "client", Policies: policyNames},
		(&nomadapi.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return "", fmt.Errorf("failed to create nomad token %q: %w", name, err)
	}
	return tok.SecretID, nil
}

func nomadPolicy(ctx context.Context, c *nomadapi.Client, p *nomadapi.ACLPolicy) error {
	if _, err := c.ACLPolicies().Upsert(p, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("failed to write nomad policy %s: %w", p.Name, err)
	}
	return nil
}

// EnsureNamespace creates the Nomad namespace ns, or makes the one of its name allow
// the task drivers ns does.
func EnsureNamespace(ctx context.Context, c *nomadapi.Client, ns *nomadapi.Namespace) error {
	cur, _, err := c.Namespaces().Info(ns.Name, (&nomadapi.QueryOptions{}).WithContext(ctx))
	switch {
	case err == nil && sameDrivers(cur.Capabilities, ns.Capabilities):
		return nil
	case err != nil && !apierr.IsStatus(err, http.StatusNotFound):
		return fmt.Errorf("failed to read namespace %s: %w", ns.Name, err)
	}
	if _, err := c.Namespaces().Register(ns, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("failed to write namespace %s: %w", ns.Name, err)
	}
	return nil
}

// sameDrivers says whether two namespaces' capabilities allow and deny the same task
// drivers.
func sameDrivers(a, b *nomadapi.NamespaceCapabilities) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.Equal(a.EnabledTaskDrivers, b.EnabledTaskDrivers) && slices.Equal(a.DisabledTaskDrivers, b.DisabledTaskDrivers)
}
