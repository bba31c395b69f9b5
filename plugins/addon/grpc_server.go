package addon

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	addonv1 "github.com/dynogrid/dynogrid/plugins/addon/proto/addon/v1"
)

// GRPCPlugin is the go-plugin glue for the add-on service, used by Serve and the host.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Impl is the add-on served; nil on the host side.
	Impl Addon
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the add-on service.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return fmt.Errorf("no add-on to serve")
	}
	addonv1.RegisterAddonServer(s, &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient returns an Addon that calls the plugin over conn.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (interface{}, error) {
	return NewGRPCClient(conn), nil
}

// grpcServer adapts an Addon to the generated gRPC service. It checks requests before
// the author's code sees them and answers before the host does, and turns a panic in
// the author's code into an error.
type grpcServer struct {
	addonv1.UnimplementedAddonServer
	impl Addon
}

func (s *grpcServer) Configure(ctx context.Context, req *addonv1.ConfigureRequest) (resp *addonv1.ConfigureResponse, err error) {
	defer recoverToError("Configure", &err)
	if err := s.impl.Configure(ctx, Config{Settings: req.GetSettings(), StateDir: req.GetStateDir()}); err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &addonv1.ConfigureResponse{}, nil
}

func (s *grpcServer) Describe(ctx context.Context, _ *addonv1.DescribeRequest) (resp *addonv1.DescribeResponse, err error) {
	defer recoverToError("Describe", &err)
	d, err := s.describe(ctx)
	if err != nil {
		return nil, err
	}
	return descriptionToProto(d), nil
}

func (s *grpcServer) describe(ctx context.Context) (Description, error) {
	d, err := s.impl.Describe(ctx)
	if err != nil {
		return d, status.Error(codes.Unknown, err.Error())
	}
	if err := ValidateDescription(d); err != nil {
		return d, status.Errorf(codes.Internal, "the add-on's description is invalid: %v", err)
	}
	return d, nil
}

func (s *grpcServer) Provision(ctx context.Context, req *addonv1.ProvisionRequest) (resp *addonv1.ProvisionResponse, err error) {
	defer recoverToError("Provision", &err)
	r := ProvisionRequest{RequestID: req.GetRequestId(), App: req.GetApp(), Plan: req.GetPlan(), Name: req.GetName()}
	if err := ValidateProvisionRequest(r); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	d, err := s.describe(ctx)
	if err != nil {
		return nil, err
	}
	if r.Plan, err = d.ResolvePlan(r.Plan); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	res, err := s.impl.Provision(ctx, r)
	if err != nil {
		return nil, status.Error(codes.Unknown, err.Error())
	}
	if err := ValidateResource(d, res); err != nil {
		return nil, status.Errorf(codes.Internal, "the add-on's answer is invalid: %v", err)
	}
	return &addonv1.ProvisionResponse{ResourceId: res.ID, Env: res.Env, Message: res.Message}, nil
}

func (s *grpcServer) Deprovision(ctx context.Context, req *addonv1.DeprovisionRequest) (resp *addonv1.DeprovisionResponse, err error) {
	defer recoverToError("Deprovision", &err)
	r := DeprovisionRequest{RequestID: req.GetRequestId(), ResourceID: req.GetResourceId(), App: req.GetApp()}
	if err := ValidateDeprovisionRequest(r); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := s.impl.Deprovision(ctx, r); err != nil {
		return nil, status.Error(codes.Unknown, err.Error())
	}
	return &addonv1.DeprovisionResponse{}, nil
}

// recoverToError turns a panic in the author's code into an error for the host. The
// stack goes to the plugin's log (stderr, which the host logs), not into the error: the
// user sees the panic's value on one line.
func recoverToError(call string, err *error) {
	if r := recover(); r != nil {
		NewLogger().Error("the add-on panicked", "call", call, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		*err = status.Errorf(codes.Internal, "the add-on panicked in %s: %v", call, r)
	}
}

func descriptionToProto(d Description) *addonv1.DescribeResponse {
	out := &addonv1.DescribeResponse{
		Name: d.Name, Version: d.Version, Summary: d.Summary,
		DefaultPlan: d.DefaultPlan, EnvVars: d.EnvVars,
	}
	for _, p := range d.Plans {
		out.Plans = append(out.Plans, &addonv1.Plan{Name: p.Name, Description: p.Description})
	}
	return out
}
