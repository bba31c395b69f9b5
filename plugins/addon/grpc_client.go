package addon

import (
	"context"

	"google.golang.org/grpc"

	addonv1 "github.com/dynogrid/dynogrid/plugins/addon/proto/addon/v1"
)

// grpcClient is an Addon that calls a plugin over gRPC. Errors are gRPC status errors
// as the plugin or the transport gave them; the host turns them into messages.
type grpcClient struct {
	c addonv1.AddonClient
}

var _ Addon = (*grpcClient)(nil)

// NewGRPCClient returns an Addon that calls the add-on service on conn.
func NewGRPCClient(conn *grpc.ClientConn) Addon {
	return &grpcClient{c: addonv1.NewAddonClient(conn)}
}

func (g *grpcClient) Configure(ctx context.Context, cfg Config) error {
	_, err := g.c.Configure(ctx, &addonv1.ConfigureRequest{Settings: cfg.Settings, StateDir: cfg.StateDir})
	return err
}

func (g *grpcClient) Describe(ctx context.Context) (Description, error) {
	resp, err := g.c.Describe(ctx, &addonv1.DescribeRequest{})
	if err != nil {
		return Description{}, err
	}
	d := Description{
		Name: resp.GetName(), Version: resp.GetVersion(), Summary: resp.GetSummary(),
		DefaultPlan: resp.GetDefaultPlan(), EnvVars: resp.GetEnvVars(),
	}
	for _, p := range resp.GetPlans() {
		d.Plans = append(d.Plans, Plan{Name: p.GetName(), Description: p.GetDescription()})
	}
	return d, nil
}

func (g *grpcClient) Provision(ctx context.Context, req ProvisionRequest) (Resource, error) {
	resp, err := g.c.Provision(ctx, &addonv1.ProvisionRequest{
		RequestId: req.RequestID, App: req.App, Plan: req.Plan, Name: req.Name,
	})
	if err != nil {
		return Resource{}, err
	}
	return Resource{ID: resp.GetResourceId(), Env: resp.GetEnv(), Message: resp.GetMessage()}, nil
}

func (g *grpcClient) Deprovision(ctx context.Context, req DeprovisionRequest) error {
	_, err := g.c.Deprovision(ctx, &addonv1.DeprovisionRequest{
		RequestId: req.RequestID, ResourceId: req.ResourceID, App: req.App,
	})
	return err
}
