package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/apierr"
	"github.com/dynogrid/dynogrid/internal/deploy"
	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"
)

// TestTenancy deploys two apps on one grid with ACLs on and checks that an app's deploy
// token manages its app and nothing else, and that a caller without a token (what a dyno
// would be, if it could reach the agents at all) gets nothing from Nomad or Consul.
func TestTenancy(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t)
	tokens := harness.Tokens(t, g)
	for _, app := range []string{"alpha", "beta"} {
		dir := copyApp(t)
		writeSpec(t, dir, strings.Replace(webSpec(app, "  config {\n    SECRET = \"only-"+app+"\"\n  }"), "count        = 2", "count        = 1", 1))
		newCLI(t, g, app).must("deploy", dir)
	}

	alphaToken := strings.TrimSpace(newCLI(t, g, "alpha").must("apps:token"))
	asAlpha := func(app string) *dynoCLI {
		c := newCLI(t, g, app)
		for i, a := range c.base {
			if a == "--nomad-token" {
				c.base[i+1] = alphaToken
			}
		}
		return c
	}

	// With its deploy token, alpha's owner manages alpha.
	if out := asAlpha("alpha").must("config"); !strings.Contains(out, "only-alpha") {
		t.Errorf("alpha's token read alpha's config as:\n%s", out)
	}
	asAlpha("alpha").must("ps:scale", "web=2")
	asAlpha("alpha").must("releases")

	// And nothing of beta: a clear error naming the app and the policy it lacks.
	for _, cmd := range [][]string{{"config"}, {"config:set", "X=1"}, {"ps:scale", "web=3"}, {"releases"}, {"ps"},
		{"ps:stop", "web.1"}, {"ps:stop", "web"}, {"run:detached", "--", "true"}, {"schedules"}, {"schedules:run", "nightly"}} {
		code, out, errOut := asAlpha("beta").run(cmd[0], cmd[1:]...)
		if code != 4 || !strings.Contains(errOut, "app beta") || !strings.Contains(errOut, "app-beta-deploy") || strings.Contains(out, "only-beta") {
			t.Errorf("dyno %s --app beta with alpha's token: exit %d, stdout %q, stderr %q; want exit 4 naming app beta and policy app-beta-deploy", strings.Join(cmd, " "), code, out, errOut)
		}
	}
	// Minting tokens is an operator's right, not an app's.
	if code, _, errOut := asAlpha("alpha").run("apps:token"); code == 0 {
		t.Errorf("alpha's deploy token minted a token: %s", errOut)
	}

	// Through Nomad's API, alpha's token reaches none of beta's variables or jobs, nor
	// the add-ons' namespace, nor any other namespace.
	n, err := g.NomadClient()
	if err != nil {
		t.Fatal(err)
	}
	n.SetSecretID(alphaToken)
	job, _, err := appNomad(t, g, "beta").Jobs().Info("beta", nil)
	if err != nil {
		t.Fatal(err)
	}
	betaEnv := job.Meta[deploy.MetaEnv]
	// Nomad answers a read of a variable the token may not see as if it did not exist,
	// and leaves such variables out of lists.
	if v, _, err := n.Variables().Read(betaEnv, &nomadapi.QueryOptions{Namespace: "beta"}); err == nil || v != nil {
		t.Errorf("alpha's token read beta's config %s: %+v", betaEnv, v)
	}
	for _, ns := range []string{"beta", "dyno-addons", "default", "*"} {
		vs, _, err := n.Variables().PrefixList("", &nomadapi.QueryOptions{Namespace: ns})
		for _, v := range vs {
			if v.Namespace != "alpha" {
				t.Errorf("alpha's token listed %s in namespace %s (asked for %s, %v)", v.Path, v.Namespace, ns, err)
			}
		}
	}
	for what, call := range map[string]func() error{
		"read beta's job": func() error {
			_, _, err := n.Jobs().Info("beta", &nomadapi.QueryOptions{Namespace: "beta"})
			return err
		},
		"submit a job to default": func() error {
			j := nomadapi.NewBatchJob("x", "x", "global", 50)
			j.Namespace = ptr("default")
			j.AddTaskGroup(nomadapi.NewTaskGroup("x", 1).AddTask(nomadapi.NewTask("x", "dyno")))
			_, _, err := n.Jobs().Register(j, &nomadapi.WriteOptions{Namespace: "default"})
			return err
		},
		"list ACL tokens": func() error {
			_, _, err := n.ACLTokens().List(nil)
			return err
		},
	} {
		if err := call(); !apierr.IsStatus(err, http.StatusForbidden) {
			t.Errorf("alpha's token could %s: got %v, want 403", what, err)
		}
	}

	// Without a token, Nomad and Consul answer nothing: no jobs, no variables, no key
	// writes, no service registration that would take an app's traffic.
	anon, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + g.Options.NomadAddr()})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := anon.Jobs().List(&nomadapi.QueryOptions{Namespace: "*"}); !apierr.IsStatus(err, http.StatusForbidden) {
		t.Errorf("anonymous job list: %v, want 403", err)
	}
	if vs, _, err := anon.Variables().PrefixList("", &nomadapi.QueryOptions{Namespace: "*"}); len(vs) != 0 {
		t.Errorf("anonymous variable list: %v (%v), want none", vs, err)
	}
	if v, _, err := anon.Variables().Read(betaEnv, &nomadapi.QueryOptions{Namespace: "beta"}); err == nil || v != nil {
		t.Errorf("anonymous read of beta's config: %+v", v)
	}
	ac, err := consulapi.NewClient(&consulapi.Config{Address: g.Options.ConsulAddr()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ac.KV().Put(&consulapi.KVPair{Key: "dynogrid/meter/x", Value: []byte("1")}, nil); !apierr.IsStatus(err, http.StatusForbidden) {
		t.Errorf("anonymous Consul KV write: %v, want 403", err)
	}
	hijack := &consulapi.AgentServiceRegistration{Name: deploy.ServiceName("beta"), Tags: []string{"dyno", "app=beta"}, Port: 1}
	if err := ac.Agent().ServiceRegister(hijack); !apierr.IsStatus(err, http.StatusForbidden) {
		t.Errorf("anonymous registration of beta-web: %v, want 403", err)
	}
	// The router's own token reads the catalog and writes nothing.
	rc, err := consulapi.NewClient(&consulapi.Config{Address: g.Options.ConsulAddr(), Token: tokens.Consul["router"]})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Agent().ServiceRegister(hijack); !apierr.IsStatus(err, http.StatusForbidden) {
		t.Errorf("the router's token registered beta-web: %v, want 403", err)
	}
	if _, _, err := rc.Health().Service(deploy.ServiceName("alpha"), "", true, nil); err != nil {
		t.Errorf("the router's token cannot read alpha's dynos: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
