package autoscale

import (
	"context"
	"fmt"
	"net"
	"sort"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dynogrid/dynogrid/router"
)

// Routers says where the routers serve their metrics (host:port).
type Routers func(ctx context.Context) ([]string, error)

// StaticRouters are routers given on the command line.
func StaticRouters(addrs []string) Routers {
	return func(context.Context) ([]string, error) { return addrs, nil }
}

// ConsulRouters finds the routers of a cluster (router -cluster) in Consul: the
// passing instances of service dyno-router that routers registered themselves (not an
// app's job through Nomad: router.SelfRegistered), at the metrics address in their
// meta. A router that listens for metrics on every address (":9101") is reached at its
// node's.
func ConsulRouters(c *consulapi.Client) Routers {
	return func(ctx context.Context) ([]string, error) {
		entries, _, err := c.Health().Service(router.RouterService, "", true, (&consulapi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("failed to find the routers in Consul: %w", err)
		}
		var addrs []string
		for _, e := range entries {
			if !router.SelfRegistered(e.Service) {
				continue // an app's job could have registered it, with metrics of its own
			}
			host, port, err := net.SplitHostPort(e.Service.Meta[router.MetricsMeta])
			if err != nil || port == "" {
				continue // the router serves no metrics
			}
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
				host = e.Node.Address
			}
			addrs = append(addrs, net.JoinHostPort(host, port))
		}
		sort.Strings(addrs)
		return addrs, nil
	}
}
