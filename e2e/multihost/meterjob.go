package multihost

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/tenancy"
	"github.com/dynogrid/dynogrid/policies"
)

// meterLock is the Consul key of the ledger's lock (docs/metering.md).
const meterLock = "dynogrid/meter/lock"

// RunMeterJob runs examples/jobs/dyno-meter.nomad.hcl on the client hosts as
// docs/production.md does (TLS, its tokens in the job's Variable) and waits until one
// meter holds the ledger's lock; it returns the lock's holder.
func (g *Grid) RunMeterJob(ctx context.Context) (string, error) {
	src, err := os.ReadFile(filepath.Join(g.repo, "examples", "jobs", "dyno-meter.nomad.hcl"))
	if err != nil {
		return "", err
	}
	nomad := g.NomadClient()
	job, err := nomad.Jobs().ParseHCLOpts(&nomadapi.JobsParseRequest{JobHCL: string(src), Canonicalize: true,
		Variables: `meter_binary = "/opt/dynogrid/bin/dyno-meter"
ca_file      = "/etc/dynogrid/tls/ca.pem"
nomad_addr   = "https://$${attr.unique.network.ip-address}:4646"
`})
	if err != nil {
		return "", fmt.Errorf("examples/jobs/dyno-meter.nomad.hcl: %w", err)
	}
	token, err := tenancy.NomadToken(ctx, nomad, "multihost meter", policies.NomadMeter)
	if err != nil {
		return "", err
	}
	if _, _, err := nomad.Variables().Create(&nomadapi.Variable{Namespace: "default", Path: "nomad/jobs/dyno-meter",
		Items: map[string]string{"nomad_token": token, "consul_token": g.tokens.Consul[policies.ConsulMeter]}}, nil); err != nil {
		return "", fmt.Errorf("failed to store the meter's tokens: %w", err)
	}
	if _, _, err := nomad.Jobs().Register(job, nil); err != nil {
		return "", fmt.Errorf("failed to run the meter's job: %w", err)
	}
	var holder string
	err = g.wait(ctx, "a meter holding the ledger's lock", func(context.Context) error {
		kv, _, err := g.ConsulClient().KV().Get(meterLock, nil)
		if err != nil {
			return err
		}
		if kv == nil || kv.Session == "" {
			return fmt.Errorf("%s is not held", meterLock)
		}
		holder = string(kv.Value)
		return nil
	})
	return holder, err
}
