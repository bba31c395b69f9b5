package addontest

import (
	"context"
	"fmt"

	"github.com/dynogrid/dynogrid/plugins/addon"
)

// Mock is an add-on built from function fields, for tests of code that calls add-ons:
// give it to the host as an in-process add-on (addonhost.Options.InProcess), or serve
// it over the protocol with InProcess. Each method calls its field. A nil field makes
// its method fail with an error naming the field, except ConfigureFunc: without one,
// Configure accepts any configuration.
type Mock struct {
	ConfigureFunc   func(ctx context.Context, cfg addon.Config) error
	DescribeFunc    func(ctx context.Context) (addon.Description, error)
	ProvisionFunc   func(ctx context.Context, req addon.ProvisionRequest) (addon.Resource, error)
	DeprovisionFunc func(ctx context.Context, req addon.DeprovisionRequest) error
}

var _ addon.Addon = (*Mock)(nil)

// Configure calls ConfigureFunc, or accepts cfg when it is nil.
func (m *Mock) Configure(ctx context.Context, cfg addon.Config) error {
	if m.ConfigureFunc == nil {
		return nil
	}
	return m.ConfigureFunc(ctx, cfg)
}

// Describe calls DescribeFunc.
func (m *Mock) Describe(ctx context.Context) (addon.Description, error) {
	if m.DescribeFunc == nil {
		return addon.Description{}, unset("Describe", "DescribeFunc")
	}
	return m.DescribeFunc(ctx)
}

// Provision calls ProvisionFunc.
func (m *Mock) Provision(ctx context.Context, req addon.ProvisionRequest) (addon.Resource, error) {
	if m.ProvisionFunc == nil {
		return addon.Resource{}, unset("Provision", "ProvisionFunc")
	}
	return m.ProvisionFunc(ctx, req)
}

// Deprovision calls DeprovisionFunc.
func (m *Mock) Deprovision(ctx context.Context, req addon.DeprovisionRequest) error {
	if m.DeprovisionFunc == nil {
		return unset("Deprovision", "DeprovisionFunc")
	}
	return m.DeprovisionFunc(ctx, req)
}

func unset(method, field string) error {
	return fmt.Errorf("addontest.Mock: %s was called but the mock has no %s", method, field)
}
