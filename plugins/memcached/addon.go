package memcached

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/agentapi"
	"github.com/dynogrid/dynogrid/internal/apierr"
	"github.com/dynogrid/dynogrid/plugins/addon"
)

// Addon is the memcached add-on.
type Addon struct {
	Logger hclog.Logger
	cfg    config
	nomad  *api.Client
	// pollInterval is how often Provision looks at the job's allocations.
	pollInterval time.Duration
}

var _ addon.Addon = (*Addon)(nil)

// New returns the add-on, unconfigured.
func New(logger hclog.Logger) *Addon {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Addon{Logger: logger, cfg: config{auth: true}, pollInterval: 250 * time.Millisecond}
}

// Configure checks the settings and makes the Nomad client; it does not connect.
func (a *Addon) Configure(_ context.Context, c addon.Config) error {
	cfg, err := parseConfig(c)
	if err != nil {
		return err
	}
	client, err := agentapi.NewNomad(&api.Config{Address: cfg.nomadAddr, SecretID: cfg.nomadToken, Namespace: cfg.namespace, Region: cfg.region, TLSConfig: cfg.tls})
	if err != nil {
		return fmt.Errorf("failed to make a Nomad client for %s: %w", cfg.nomadAddr, err)
	}
	a.cfg, a.nomad = cfg, client
	return nil
}

// Describe tells the plans and variables (with auth: the credentials too).
func (a *Addon) Describe(context.Context) (addon.Description, error) {
	return a.description(), nil
}

type credentials struct {
	username, password string
}

// Provision records the request and credentials in a Nomad Variable, submits the job,
// waits until memcached answers, and returns its address. A retry with the same request
// ID finds the variable and the job again.
func (a *Addon) Provision(ctx context.Context, req addon.ProvisionRequest) (addon.Resource, error) {
	if a.nomad == nil {
		return addon.Resource{}, errors.New("the add-on is not configured (nomad_addr)")
	}
	jobID := JobID(req.App, req.RequestID)
	if err := a.checkOwner(ctx, jobID, req.App, req.RequestID); err != nil {
		return addon.Resource{}, err
	}
	creds, err := a.credentials(ctx, jobID, req.App, req.RequestID)
	if err != nil {
		return addon.Resource{}, err
	}
	if _, _, err := a.nomad.Jobs().Register(a.job(jobID, req.App, req.RequestID, req.Plan), a.writeOpts(ctx)); err != nil {
		return addon.Resource{}, fmt.Errorf("failed to submit job %s to Nomad: %w", jobID, err)
	}
	addr, err := a.waitRunning(ctx, jobID, creds)
	if err != nil {
		return addon.Resource{}, err
	}
	a.Logger.Info("memcached ready", "app", req.App, "job", jobID, "address", addr)
	env := map[string]string{"MEMCACHED_SERVERS": addr}
	if a.cfg.auth {
		env["MEMCACHED_USERNAME"], env["MEMCACHED_PASSWORD"] = creds.username, creds.password
	}
	return addon.Resource{
		ID: jobID, Env: env,
		Message: fmt.Sprintf("memcached %s at %s (plan %s, %d MB)", jobID, addr, req.Plan, memoryMB(req.Plan)),
	}, nil
}

// checkOwner refuses a job of that ID that another app or request made.
func (a *Addon) checkOwner(ctx context.Context, jobID, app, requestID string) error {
	job, _, err := a.nomad.Jobs().Info(jobID, a.queryOpts(ctx))
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("failed to look up job %s: %w", jobID, err)
	}
	if job.Meta[metaApp] != app || (requestID != "" && job.Meta[metaRequestID] != requestID) {
		return fmt.Errorf("job %s exists but belongs to app %q request %q: left alone", jobID, job.Meta[metaApp], job.Meta[metaRequestID])
	}
	return nil
}

// credentials reads the request's variable, or creates it (check-and-set, so that two
// concurrent attempts agree on one password).
func (a *Addon) credentials(ctx context.Context, jobID, app, requestID string) (credentials, error) {
	path := variablePath(jobID)
	for attempt := 0; attempt < 3; attempt++ {
		v, _, err := a.nomad.Variables().Peek(path, a.queryOpts(ctx))
		if err != nil {
			return credentials{}, fmt.Errorf("failed to read variable %s: %w", path, err)
		}
		if v != nil {
			if v.Items["app"] != app || v.Items["request_id"] != requestID {
				return credentials{}, fmt.Errorf("variable %s belongs to app %q request %q: left alone", path, v.Items["app"], v.Items["request_id"])
			}
			return credentials{username: v.Items["username"], password: v.Items["password"]}, nil
		}
		pw := make([]byte, 24)
		if _, err := rand.Read(pw); err != nil {
			return credentials{}, fmt.Errorf("failed to make a password: %w", err)
		}
		v = &api.Variable{Namespace: a.cfg.namespace, Path: path, Items: api.VariableItems{
			"app": app, "request_id": requestID, "username": app, "password": base64.RawURLEncoding.EncodeToString(pw),
		}}
		_, _, err = a.nomad.Variables().CheckedCreate(v, a.writeOpts(ctx))
		var conflict api.ErrCASConflict
		if errors.As(err, &conflict) {
			continue // someone else created it: read theirs
		}
		if err != nil {
			return credentials{}, fmt.Errorf("failed to write variable %s: %w", path, err)
		}
	}
	return credentials{}, fmt.Errorf("variable %s keeps changing", path)
}

// waitRunning waits until an allocation of the job's current version runs and its
// memcached answers, and returns host:port. A failed allocation ends the wait with
// the reason Nomad gives.
func (a *Addon) waitRunning(ctx context.Context, jobID string, creds credentials) (string, error) {
	var last string
	for {
		job, _, err := a.nomad.Jobs().Info(jobID, a.queryOpts(ctx))
		if err != nil {
			return "", a.waitErr(ctx, jobID, fmt.Errorf("failed to read job %s: %w", jobID, err))
		}
		allocs, _, err := a.nomad.Jobs().Allocations(jobID, false, a.queryOpts(ctx))
		if err != nil {
			return "", a.waitErr(ctx, jobID, fmt.Errorf("failed to list the allocations of %s: %w", jobID, err))
		}
		for _, stub := range allocs {
			if job.Version == nil || stub.JobVersion != *job.Version {
				continue
			}
			switch stub.ClientStatus {
			case api.AllocClientStatusFailed, api.AllocClientStatusLost:
				return "", fmt.Errorf("memcached of %s failed to run: %s", jobID, allocProblem(stub))
			case api.AllocClientStatusRunning:
				addr, err := a.allocAddr(ctx, stub.ID)
				if err != nil {
					last = err.Error()
					continue
				}
				if err := Probe(ctx, addr, creds.username, creds.password, a.cfg.auth); err != nil {
					last = fmt.Sprintf("memcached at %s does not answer yet: %v", addr, err)
					continue
				}
				return addr, nil
			default:
				last = "allocation " + stub.ID[:8] + " is " + stub.ClientStatus + allocProblemSuffix(stub)
			}
		}
		if last == "" {
			if problem := a.placementProblem(ctx, jobID, job); problem != "" {
				return "", fmt.Errorf("memcached of %s cannot be placed: %s", jobID, problem)
			}
			last = "no allocation placed yet"
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("memcached of %s did not start in time (%s): %w", jobID, last, ctx.Err())
		case <-time.After(a.pollInterval):
		}
	}
}

func (a *Addon) waitErr(ctx context.Context, jobID string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("memcached of %s did not start in time: %w", jobID, ctx.Err())
	}
	return err
}

// placementProblem explains why the scheduler placed no allocation of the job's
// current version, or returns "" while it has not tried.
func (a *Addon) placementProblem(ctx context.Context, jobID string, job *api.Job) string {
	evals, _, err := a.nomad.Jobs().Evaluations(jobID, a.queryOpts(ctx))
	if err != nil || job.JobModifyIndex == nil {
		return ""
	}
	for _, ev := range evals {
		if ev.JobModifyIndex != *job.JobModifyIndex || len(ev.FailedTGAllocs) == 0 {
			continue
		}
		var parts []string
		for tg, m := range ev.FailedTGAllocs {
			part := fmt.Sprintf("group %s: %d of %d nodes evaluated", tg, m.NodesEvaluated, m.NodesInPool)
			for what, n := range m.ConstraintFiltered {
				part += fmt.Sprintf(", %d filtered by %s", n, what)
			}
			for what, n := range m.DimensionExhausted {
				part += fmt.Sprintf(", %d short of %s", n, what)
			}
			if m.NodesEvaluated == 0 {
				part += " (no node in datacenters " + strings.Join(a.cfg.datacenters, ",") + " can run it)"
			}
			parts = append(parts, part)
		}
		sort.Strings(parts)
		return strings.Join(parts, "; ")
	}
	return ""
}

// allocAddr is the address of the allocation's memcached port.
func (a *Addon) allocAddr(ctx context.Context, allocID string) (string, error) {
	alloc, _, err := a.nomad.Allocations().Info(allocID, a.queryOpts(ctx))
	if err != nil {
		return "", fmt.Errorf("failed to read allocation %s: %w", allocID, err)
	}
	if alloc.AllocatedResources != nil {
		for _, p := range alloc.AllocatedResources.Shared.Ports {
			if p.Label == portLabel {
				return net.JoinHostPort(p.HostIP, strconv.Itoa(p.Value)), nil
			}
		}
	}
	return "", fmt.Errorf("allocation %s has no %s port", allocID, portLabel)
}

// allocProblem summarises the last task events of a failed allocation.
func allocProblem(a *api.AllocationListStub) string {
	msg := a.ClientDescription
	for name, ts := range a.TaskStates {
		for _, ev := range ts.Events {
			if ev.DisplayMessage != "" && (ev.FailsTask || ev.Type == api.TaskDriverFailure || ev.Type == api.TaskTerminated || ev.Type == api.TaskSetupFailure) {
				msg += fmt.Sprintf("; task %s: %s: %s", name, ev.Type, ev.DisplayMessage)
			}
		}
	}
	return msg
}

func allocProblemSuffix(a *api.AllocationListStub) string {
	if p := allocProblem(a); p != "" && p != a.ClientDescription {
		return " (" + p + ")"
	}
	return ""
}

// Deprovision stops and purges the job, waits for its allocations to stop, and deletes
// its variable. A job already gone is success; a job of another app is left alone.
func (a *Addon) Deprovision(ctx context.Context, req addon.DeprovisionRequest) error {
	if a.nomad == nil {
		return errors.New("the add-on is not configured (nomad_addr)")
	}
	jobID := req.ResourceID
	job, _, err := a.nomad.Jobs().Info(jobID, a.queryOpts(ctx))
	switch {
	case err != nil && !isNotFound(err):
		return fmt.Errorf("failed to look up job %s: %w", jobID, err)
	case err == nil && (job.Meta[metaAddon] != Name || job.Meta[metaApp] != req.App):
		return fmt.Errorf("job %s belongs to app %q (add-on %q), not to %s: left alone", jobID, job.Meta[metaApp], job.Meta[metaAddon], req.App)
	case err == nil:
		allocs, _, err := a.nomad.Jobs().Allocations(jobID, true, a.queryOpts(ctx))
		if err != nil {
			return fmt.Errorf("failed to list the allocations of %s: %w", jobID, err)
		}
		if _, _, err := a.nomad.Jobs().Deregister(jobID, true, a.writeOpts(ctx)); err != nil {
			return fmt.Errorf("failed to stop job %s: %w", jobID, err)
		}
		if err := a.waitStopped(ctx, allocs); err != nil {
			return err
		}
	}
	v, _, err := a.nomad.Variables().Peek(variablePath(jobID), a.queryOpts(ctx))
	if err != nil {
		return fmt.Errorf("failed to read variable %s: %w", variablePath(jobID), err)
	}
	if v != nil {
		if v.Items["app"] != req.App {
			return fmt.Errorf("variable %s belongs to app %q: left alone", variablePath(jobID), v.Items["app"])
		}
		if _, err := a.nomad.Variables().Delete(variablePath(jobID), a.writeOpts(ctx)); err != nil {
			return fmt.Errorf("failed to delete variable %s: %w", variablePath(jobID), err)
		}
	}
	a.Logger.Info("memcached stopped", "app", req.App, "job", jobID)
	return nil
}

// waitStopped waits until every allocation is terminal on its client.
func (a *Addon) waitStopped(ctx context.Context, allocs []*api.AllocationListStub) error {
	for _, stub := range allocs {
		for {
			alloc, _, err := a.nomad.Allocations().Info(stub.ID, a.queryOpts(ctx))
			if err != nil && isNotFound(err) {
				break
			}
			if err == nil && alloc.ClientTerminalStatus() {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("allocation %s did not stop in time: %w", stub.ID, ctx.Err())
			case <-time.After(a.pollInterval):
			}
		}
	}
	return nil
}

func (a *Addon) queryOpts(ctx context.Context) *api.QueryOptions {
	return (&api.QueryOptions{Namespace: a.cfg.namespace}).WithContext(ctx)
}

func (a *Addon) writeOpts(ctx context.Context) *api.WriteOptions {
	return (&api.WriteOptions{Namespace: a.cfg.namespace}).WithContext(ctx)
}

// isNotFound says whether Nomad answered that the job or allocation does not exist; an
// error that never reached Nomad is not one.
func isNotFound(err error) bool {
	return apierr.IsStatus(err, http.StatusNotFound)
}
