// Package addons attaches add-ons to apps: it asks an add-on plugin for a resource,
// keeps the attachment in a Nomad Variable under the app's own prefix, and makes a
// release whose dynos get the resource's variables. Credentials live only in Nomad
// Variables, never in the job spec.
package addons

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/plugins/addon"
	"github.com/dynogrid/dynogrid/plugins/addon/addonhost"
	nomadapi "github.com/hashicorp/nomad/api"
)

// Attachment is one add-on attached to an app.
type Attachment struct {
	App        string            `json:"app"`
	Name       string            `json:"name"`
	Service    string            `json:"service"`
	Plan       string            `json:"plan"`
	RequestID  string            `json:"request_id"`
	ResourceID string            `json:"resource_id,omitempty"`
	State      string            `json:"state"`
	Env        map[string]string `json:"-"`
	EnvNames   []string          `json:"env"`
	Created    time.Time         `json:"created"`
}

// Attachment states.
const (
	// StateProvisioning: the add-on was asked for a resource, which may not exist yet.
	StateProvisioning = "provisioning"
	// StateProvisioned: the resource exists and its variables are recorded, but no
	// release gives them to the app yet: the deploy that provisioned it made no release,
	// or its release failed. The next deploy attaches it.
	StateProvisioned = "provisioned"
	// StateAttached: a release gives the app the resource's variables.
	StateAttached = "attached"
)

var attachNameRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,29}$`)

// Manager attaches and detaches add-ons.
type Manager struct {
	Deployer *deploy.Deployer
	Host     *addonhost.Host
}

func (m *Manager) nomad() *nomadapi.Client { return m.Deployer.Nomad }

func path(app, name string) string { return fmt.Sprintf("nomad/jobs/%s/addons/%s", app, name) }

// List returns the app's attachments, sorted by name.
func (m *Manager) List(ctx context.Context, app string) ([]Attachment, error) {
	metas, _, err := m.nomad().Variables().PrefixList(fmt.Sprintf("nomad/jobs/%s/addons/", app), (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("failed to list the add-ons of %s: %w", app, err)
	}
	var out []Attachment
	for _, v := range metas {
		a, err := m.Get(ctx, app, v.Path[strings.LastIndexByte(v.Path, '/')+1:])
		if err != nil {
			return nil, err
		}
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Get reads one attachment.
func (m *Manager) Get(ctx context.Context, app, name string) (*Attachment, error) {
	v, _, err := m.nomad().Variables().Read(path(app, name), (&nomadapi.QueryOptions{}).WithContext(ctx))
	if errors.Is(err, nomadapi.ErrVariablePathNotFound) {
		return nil, fmt.Errorf("%s has no add-on named %q (see `dyno addons --app %s`)", app, name, app)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read add-on %s of %s: %w", name, app, err)
	}
	a := &Attachment{App: app, Name: name, Env: map[string]string{}}
	for k, val := range v.Items {
		switch k {
		case "_service":
			a.Service = val
		case "_plan":
			a.Plan = val
		case "_request_id":
			a.RequestID = val
		case "_resource_id":
			a.ResourceID = val
		case "_state":
			a.State = val
		case "_created":
			a.Created, _ = time.Parse(time.RFC3339, val)
		default:
			a.Env[k] = val
			a.EnvNames = append(a.EnvNames, k)
		}
	}
	sort.Strings(a.EnvNames)
	return a, nil
}

func (m *Manager) put(ctx context.Context, a *Attachment) error {
	items := nomadapi.VariableItems{
		"_service": a.Service, "_plan": a.Plan, "_request_id": a.RequestID,
		"_resource_id": a.ResourceID, "_state": a.State, "_created": a.Created.Format(time.RFC3339),
	}
	for k, v := range a.Env {
		items[k] = v
	}
	_, _, err := m.nomad().Variables().Update(&nomadapi.Variable{Path: path(a.App, a.Name), Items: items}, (&nomadapi.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("failed to record add-on %s of %s: %w", a.Name, a.App, err)
	}
	return nil
}

// Attach provisions add-on service for app under name (default: the service's name)
// and makes a release that gives the app its variables. Running it again after a
// failure retries with the same request ID, so the plugin returns the same resource.
func (m *Manager) Attach(ctx context.Context, app, service, name, plan string) (*Attachment, error) {
	cur, err := m.Deployer.Current(ctx, app)
	if err != nil {
		return nil, err
	}
	a, err := m.provision(ctx, app, service, name, plan)
	if err != nil {
		return nil, err
	}
	for k := range a.Env {
		if _, taken := cur.Env[k]; taken {
			return nil, fmt.Errorf("add-on %s would set %s, which %s already has; attach it under another name with --as", service, k, app)
		}
	}
	if err := checkEnv(cur.Env, a.Env); err != nil {
		return nil, fmt.Errorf("add-on %s was not attached to %s: its variables would break a config limit (%w); make room with `dyno config:unset` and run the same command again, or remove its resource with `dyno addons:destroy %s`", service, app, err, a.Name)
	}
	a.State = StateAttached
	if err := m.put(ctx, a); err != nil {
		return nil, err
	}
	if _, err := m.Deployer.SetConfig(ctx, app, a.Env, nil, fmt.Sprintf("Attach %s as %s", service, a.Name)); err != nil {
		return nil, fmt.Errorf("the %s resource is ready but the release that gives it to %s failed: %w", service, app, err)
	}
	return m.Get(ctx, app, a.Name)
}

// provision asks add-on service for app's resource under name (default: the
// service's name), recording the attachment as provisioning with a new request ID
// first, or reusing the request ID of an attachment that is not attached yet. It
// returns the attachment with the resource's variables, not yet recorded. Nothing is
// recorded or asked of the add-on before open's checks pass.
func (m *Manager) provision(ctx context.Context, app, service, name, plan string) (*Attachment, error) {
	if name == "" {
		name = service
	}
	p, plan, err := m.open(ctx, service, name, plan)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	a, err := m.Get(ctx, app, name)
	switch {
	case err == nil && a.Service != service:
		return nil, fmt.Errorf("%s already has an add-on named %q (a %s); choose another name with --as", app, name, a.Service)
	case err == nil && a.State == StateAttached:
		return nil, fmt.Errorf("%s already has %s attached as %q", app, service, name)
	case err != nil:
		if err := m.checkRoom(ctx, app); err != nil {
			return nil, err
		}
		a = &Attachment{App: app, Name: name, Service: service, Plan: plan, RequestID: newID(), State: StateProvisioning, Created: time.Now().UTC()}
		if err := m.put(ctx, a); err != nil {
			return nil, err
		}
	}
	// The plugin checks its answer against the description open checked: it has exactly
	// the variables whose prefixed names passed.
	res, err := p.Provision(ctx, addon.ProvisionRequest{RequestID: a.RequestID, App: app, Plan: a.Plan, Name: name})
	if err != nil {
		return nil, fmt.Errorf("%w (run the same command again to retry: the add-on returns the same resource)", err)
	}
	a.ResourceID, a.Env = res.ID, prefixed(res.Env, name, service)
	return a, nil
}

// open starts add-on service for an attachment named name on plan ("" for the add-on's
// default), and checks the attachment before anything is recorded or provisioned: the
// name, the plan, and the names the add-on's declared variables take under the
// attachment's prefix (a prefix can make a reserved name of an allowed one: `--as ld`
// turns PRELOAD into LD_PRELOAD). It returns the running plugin, which the caller
// closes, and the plan.
func (m *Manager) open(ctx context.Context, service, name, plan string) (*addonhost.Plugin, string, error) {
	if !attachNameRe.MatchString(name) {
		return nil, "", fmt.Errorf("--as %q is not an add-on name: use lowercase letters, digits and dashes", name)
	}
	p, err := m.Host.Open(ctx, service)
	if err != nil {
		return nil, "", err
	}
	desc := p.Description()
	plan, err = resolvePlan(desc, plan)
	if err == nil {
		prefix := envPrefix(name, service)
		for _, v := range desc.EnvVars {
			if verr := addon.ValidateEnvName(prefix + v); verr != nil {
				err = fmt.Errorf("add-on %s cannot be attached as %q: the prefix %s turns its variable %s into %s, and %v; choose another name (--as NAME, or as = \"NAME\" in the spec)", service, name, prefix, v, prefix+v, verr)
				break
			}
		}
	}
	if err != nil {
		p.Close()
		return nil, "", err
	}
	return p, plan, nil
}

// resolvePlan checks that the add-on has plan, and names its default plan for "".
func resolvePlan(desc addon.Description, plan string) (string, error) {
	var names []string
	for _, p := range desc.Plans {
		names = append(names, p.Name)
		if p.Name == plan {
			return plan, nil
		}
	}
	if plan == "" {
		if desc.DefaultPlan != "" {
			return desc.DefaultPlan, nil
		}
		if len(names) > 0 {
			return names[0], nil
		}
		return "", nil
	}
	return "", fmt.Errorf("add-on %s has no plan %q (its plans: %s)", desc.Name, plan, strings.Join(names, ", "))
}

// Detach makes a release without the add-on's variables, then deprovisions its
// resource and forgets the attachment. An attachment whose provisioning did not finish
// has no resource ID: the add-on is asked for its request's resource again first.
func (m *Manager) Detach(ctx context.Context, app, name string) error {
	a, err := m.Get(ctx, app, name)
	if err != nil {
		return err
	}
	cur, err := m.Deployer.Current(ctx, app)
	if err != nil && !errors.Is(err, deploy.ErrNoApp) {
		return err
	}
	if cur != nil {
		var unset []string
		for k := range a.Env {
			if _, ok := cur.Env[k]; ok {
				unset = append(unset, k)
			}
		}
		if len(unset) > 0 {
			if _, err := m.Deployer.SetConfig(ctx, app, nil, unset, fmt.Sprintf("Detach %s", name)); err != nil {
				return fmt.Errorf("failed to release %s without add-on %s: %w", app, name, err)
			}
		}
	}
	if a.ResourceID == "" && a.State == StateProvisioning {
		// Provision failed, but the add-on may have made the resource first. The same
		// request ID answers that resource (or makes it): ask for it, to remove it.
		res, err := m.Host.Provision(ctx, a.Service, addon.ProvisionRequest{RequestID: a.RequestID, App: app, Plan: a.Plan, Name: name})
		if err != nil {
			return fmt.Errorf("failed to find the resource of add-on %s, whose provisioning did not finish, to remove it: %w (run the same command again to retry)", name, err)
		}
		a.ResourceID = res.ID
		if err := m.put(ctx, a); err != nil {
			return err
		}
	}
	if a.ResourceID != "" {
		req := addon.DeprovisionRequest{RequestID: a.RequestID, ResourceID: a.ResourceID, App: app}
		if err := m.Host.Deprovision(ctx, a.Service, req); err != nil {
			return fmt.Errorf("%w (the variables are already removed; run the same command again to retry)", err)
		}
	}
	if _, err := m.nomad().Variables().Delete(path(app, name), (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("failed to forget add-on %s: %w", name, err)
	}
	return nil
}

// prefixed renames an add-on's variables for an attachment named other than the
// service: `--as reports` turns DATABASE_URL into REPORTS_DATABASE_URL.
func prefixed(env map[string]string, name, service string) map[string]string {
	out := make(map[string]string, len(env))
	prefix := envPrefix(name, service)
	for k, v := range env {
		out[prefix+k] = v
	}
	return out
}

// envPrefix is the prefix of the variables of an attachment named name of add-on
// service: none under the service's own name, REPORTS_ for `--as reports`.
func envPrefix(name, service string) string {
	if name == service {
		return ""
	}
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_"
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
