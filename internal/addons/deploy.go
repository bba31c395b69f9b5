package addons

import (
	"context"
	"fmt"
	"strings"

	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/internal/deploy"
)

// SpecAttach attaches a spec's add-ons as part of a deploy, in the deploy's one
// release: Provision (a deploy.Attaching) provisions the add-ons the app has not
// attached and hands their variables to the release; Attached records them attached
// once that release is out.
type SpecAttach struct {
	Manager *Manager
	App     string
	Want    []appspec.Addon
	// Progress receives a line per add-on provisioned.
	Progress func(string)
	names    []string
}

// Provision provisions each wanted add-on that is not attached (one left provisioned by
// an earlier deploy gets the same resource again) and records it provisioned, once
// every one of them passed the checks that need no resource (see Manager.open). env is
// the release's environment without them: a variable it already has with another value
// is refused. When an add-on fails, the ones provisioned before it stay provisioned,
// and no release is made; the next deploy attaches them with the same resources.
func (s *SpecAttach) Provision(ctx context.Context, env map[string]string) (map[string]string, []string, error) {
	have, err := s.Manager.List(ctx, s.App)
	if err != nil {
		return nil, nil, err
	}
	attached := map[string]bool{}
	for _, a := range have {
		attached[a.Name] = a.State == StateAttached
	}
	// Check each add-on to provision before the first is: an attachment name, a plan or
	// a prefixed variable name that cannot work leaves nothing provisioned.
	var todo []appspec.Addon
	for _, w := range s.Want {
		if attached[w.Name] {
			continue
		}
		p, _, err := s.Manager.open(ctx, w.Service, w.Name, w.Plan)
		if err != nil {
			return nil, nil, fmt.Errorf("%w; no release was made, and no add-on was provisioned", err)
		}
		p.Close()
		todo = append(todo, w)
	}
	vars := map[string]string{}
	s.names = nil
	for _, w := range todo {
		if s.Progress != nil {
			s.Progress(fmt.Sprintf("==> Provisioning add-on %s as %s", w.Service, w.Name))
		}
		a, err := s.Manager.provision(ctx, s.App, w.Service, w.Name, w.Plan)
		if err != nil {
			return nil, nil, fmt.Errorf("%w; no release was made%s", err, s.kept())
		}
		for _, k := range deploy.SortedKeys(a.Env) {
			if old, taken := env[k]; taken && old != a.Env[k] {
				return nil, nil, fmt.Errorf("add-on %s would set %s, which %s already has; attach it under another name with `as = \"...\"` in the spec; no release was made%s", w.Service, k, s.App, s.kept())
			}
			if _, taken := vars[k]; taken {
				return nil, nil, fmt.Errorf("add-ons of %s would set %s twice; attach one under another name with `as = \"...\"` in the spec; no release was made%s", s.App, k, s.kept())
			}
			vars[k] = a.Env[k]
		}
		a.State = StateProvisioned
		if err := s.Manager.put(ctx, a); err != nil {
			return nil, nil, err
		}
		s.names = append(s.names, a.Name)
	}
	if err := checkEnv(env, vars); err != nil {
		return nil, nil, fmt.Errorf("the add-ons' variables would break a config limit of %s (%w); no release was made%s", s.App, err, s.kept())
	}
	return vars, s.names, nil
}

// kept tells what a failed deploy leaves provisioned.
func (s *SpecAttach) kept() string {
	if len(s.names) == 0 {
		return ""
	}
	return fmt.Sprintf(" (%s stay provisioned, unattached: the next deploy attaches them, `dyno addons:destroy NAME` removes one)", strings.Join(s.names, ", "))
}

// Attached records the add-ons Provision provisioned as attached: the release that
// gives the app their variables is out.
func (s *SpecAttach) Attached(ctx context.Context) error {
	for _, name := range s.names {
		a, err := s.Manager.Get(ctx, s.App, name)
		if err != nil {
			return err
		}
		a.State = StateAttached
		if err := s.Manager.put(ctx, a); err != nil {
			return err
		}
	}
	return nil
}
