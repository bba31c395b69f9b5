package tenancy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dynogrid/dynogrid/policies"
	consulapi "github.com/hashicorp/consul/api"
)

// BootstrapConsul bootstraps the ACL system of a Consul whose ACLs are on and returns the
// management token. It retries while the servers are still electing or setting ACLs up,
// until ctx ends.
func BootstrapConsul(ctx context.Context, c *consulapi.Client) (string, error) {
	var last error
	for {
		tok, _, err := c.ACL().Bootstrap()
		if err == nil {
			return tok.SecretID, nil
		}
		if strings.Contains(err.Error(), "ACL bootstrap no longer allowed") {
			return "", fmt.Errorf("consul's ACLs were bootstrapped before: use its management token: %w", err)
		}
		last = err
		if err := pause(ctx, 200*time.Millisecond); err != nil {
			return "", fmt.Errorf("failed to bootstrap consul's ACLs: %w (last: %v)", err, last)
		}
	}
}

// ConsulToken creates a token (described by description) holding the named policies of
// package policies, creating each policy that does not exist yet. c must hold a token
// that may write ACLs.
func ConsulToken(c *consulapi.Client, description string, names ...string) (string, error) {
	links := make([]*consulapi.ACLTokenPolicyLink, 0, len(names))
	for _, n := range names {
		if err := consulPolicy(c, policies.Name(n), policies.Consul(n)); err != nil {
			return "", err
		}
		links = append(links, &consulapi.ACLTokenPolicyLink{Name: policies.Name(n)})
	}
	tok, _, err := c.ACL().TokenCreate(&consulapi.ACLToken{Description: description, Policies: links}, nil)
	if err != nil {
		return "", fmt.Errorf("failed to create consul token %q: %w", description, err)
	}
	return tok.SecretID, nil
}

func consulPolicy(c *consulapi.Client, name, rules string) error {
	p, _, err := c.ACL().PolicyReadByName(name, nil)
	if err != nil {
		return fmt.Errorf("failed to read consul policy %s: %w", name, err)
	}
	if p != nil {
		if p.Rules == rules {
			return nil
		}
		p.Rules = rules
		if _, _, err := c.ACL().PolicyUpdate(p, nil); err != nil {
			return fmt.Errorf("failed to update consul policy %s: %w", name, err)
		}
		return nil
	}
	if _, _, err := c.ACL().PolicyCreate(&consulapi.ACLPolicy{Name: name, Rules: rules}, nil); err != nil {
		return fmt.Errorf("failed to create consul policy %s: %w", name, err)
	}
	return nil
}

// SetConsulAgentToken gives the agent c talks to its own token, with which it registers
// its node and syncs services and checks.
func SetConsulAgentToken(c *consulapi.Client, token string) error {
	if _, err := c.Agent().UpdateAgentACLToken(token, nil); err != nil {
		return fmt.Errorf("failed to set the consul agent's token: %w", err)
	}
	return nil
}

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ConsulComponents names the Consul token of each component of a grid and the policies it
// holds: one list, so that every grid hands out the same tokens.
var ConsulComponents = map[string][]string{
	policies.ConsulAgent:      {policies.ConsulAgent},
	policies.ConsulNomad:      {policies.ConsulNomad},
	policies.ConsulRouter:     {policies.ConsulRouter},
	policies.ConsulCluster:    {policies.ConsulRouter, policies.ConsulCluster},
	policies.ConsulMeter:      {policies.ConsulMeter},
	policies.ConsulUsage:      {policies.ConsulUsage},
	policies.ConsulAutoscaler: {policies.ConsulAutoscaler},
}

// ConsulComponentTokens makes a token for each of ConsulComponents, described as
// "<prefix> <component>", and returns their secrets by component.
func ConsulComponentTokens(c *consulapi.Client, prefix string) (map[string]string, error) {
	tokens := map[string]string{}
	for name, pols := range ConsulComponents {
		secret, err := ConsulToken(c, prefix+" "+name, pols...)
		if err != nil {
			return nil, err
		}
		tokens[name] = secret
	}
	return tokens, nil
}
