package autoscale

import (
	"context"
	"strings"
	"testing"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/policies"
	"github.com/dynogrid/dynogrid/router"
)

// TestConsulRouters registers two routers in a real Consul agent as cluster routers do,
// one listening for metrics on every address and one on loopback, and a router
// without metrics; the autoscaler's own token finds the first two at their metrics
// addresses, and may register nothing. A dyno-router registered as Nomad registers an
// app job's services (an app's job may name its service so, with its own metrics
// address to feed the autoscaler other apps' queue waits) is not one of them.
func TestConsulRouters(t *testing.T) {
	t.Parallel()
	g := harness.Consul(t)
	tokens := harness.Tokens(t, g)
	client := func(token string) *consulapi.Client {
		c, err := consulapi.NewClient(&consulapi.Config{Address: g.Options.ConsulAddr(), Token: token})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cluster := client(tokens.Consul[policies.ConsulCluster])
	for id, metrics := range map[string]string{"a": ":9101", "b": "127.0.0.1:9201", "c": ""} {
		err := cluster.Agent().ServiceRegister(&consulapi.AgentServiceRegistration{ID: router.RouterService + "-" + id,
			Name: router.RouterService, Meta: map[string]string{"router_id": id, router.MetricsMeta: metrics}})
		if err != nil {
			t.Fatalf("registering router %s: %v", id, err)
		}
	}
	nomad := client(tokens.Consul[policies.ConsulNomad])
	forged := &consulapi.AgentServiceRegistration{
		ID:   "_nomad-task-5f1c1d3e-0b6a-4c53-9b0b-3f1e2a4b5c6d-web-" + router.RouterService + "-http",
		Name: router.RouterService, Meta: map[string]string{router.IDMeta: "evil", router.MetricsMeta: "127.0.0.1:9301"}}
	if err := nomad.Agent().ServiceRegister(forged); err != nil {
		t.Fatalf("registering an app job's service as Nomad does: %v", err)
	}
	mine := client(tokens.Consul[policies.ConsulAutoscaler])
	got, err := ConsulRouters(mine)(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	nodes, _, err := mine.Catalog().Nodes(nil)
	if err != nil || len(nodes) != 1 {
		t.Fatalf("nodes %v, %v; want the one agent's", nodes, err)
	}
	want := []string{"127.0.0.1:9201", nodes[0].Address + ":9101"}
	if strings.Join(got, " ") != strings.Join(want, " ") && strings.Join(got, " ") != strings.Join([]string{want[1], want[0]}, " ") {
		t.Errorf("routers %v, want %v", got, want)
	}
	for _, a := range got {
		if strings.HasSuffix(a, ":9301") {
			t.Errorf("the autoscaler reads the metrics of a dyno-router an app's job registered through Nomad (%s)", a)
		}
	}
	err = mine.Agent().ServiceRegister(&consulapi.AgentServiceRegistration{ID: "forged", Name: router.RouterService})
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("the autoscaler's token registered a router: %v, want 403", err)
	}
}
