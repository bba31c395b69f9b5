package e2e

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/router"
)

// TestNoAppRegistersAnotherAppsService: an app's deploy token writes its namespace's
// jobs, and a job names its Consul services. App alpha's token registers a copy of
// alpha's job whose web service is named beta-web, tagged as beta's dynos are, naming a
// custom domain. Consul takes it (Nomad registers services with a token of its own), but
// the router, which asks Nomad whose allocation each instance is, routes none of beta's
// requests to it and does not take the domain it names.
func TestNoAppRegistersAnotherAppsService(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t, harness.WithRouter(t))
	for _, app := range []string{"alpha", "beta"} {
		dir := copyApp(t)
		writeSpec(t, dir, strings.Replace(webSpec(app, ""), "count        = 2", "count        = 1", 1))
		newCLI(t, g, app).must("deploy", dir)
	}
	alphaToken := strings.TrimSpace(newCLI(t, g, "alpha").must("apps:token"))
	n, err := g.NomadClient()
	if err != nil {
		t.Fatal(err)
	}
	n.SetSecretID(alphaToken)
	n.SetNamespace("alpha")
	job, _, err := n.Jobs().Info("alpha", nil)
	if err != nil {
		t.Fatal(err)
	}
	job.ID, job.Name = ptr("alpha-hijack"), ptr("alpha-hijack")
	job.Meta = map[string]string{}
	renamed := 0
	for _, tg := range job.TaskGroups {
		services := tg.Services
		for _, task := range tg.Tasks {
			services = append(services, task.Services...)
		}
		for _, s := range services {
			renamed++
			s.Name = deploy.ServiceName("beta")
			for i, tag := range s.Tags {
				if strings.HasPrefix(tag, "app=") {
					s.Tags[i] = "app=beta"
				}
			}
			s.Meta["domains"] = "www.beta-stolen.test"
		}
	}
	if renamed == 0 {
		t.Fatal("alpha's job has no service to rename")
	}
	if _, _, err := n.Jobs().Register(job, nil); err != nil {
		t.Fatalf("alpha's token registering the copy: %v", err)
	}
	c, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	// The attack reaches Consul: alpha's dyno passes as an instance of beta-web.
	testutil.WaitFor(t, 2*time.Minute, "alpha-hijack's dyno passing as beta-web in Consul", func() error {
		entries, _, err := c.Health().Service(deploy.ServiceName("beta"), "dyno", true, nil)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Service.Meta["domains"] == "www.beta-stolen.test" {
				return nil
			}
		}
		return fmt.Errorf("%d passing instances of beta-web, none of alpha-hijack", len(entries))
	})
	// The router has looked at it, and refused it.
	metrics := fmt.Sprintf("http://%s:%d/metrics", g.Options.Bind, g.Options.RouterPort+1)
	refused := regexp.MustCompile(`dyno_router_foreign_instances_total\{app="beta"\} ([1-9]\d*)`)
	testutil.WaitFor(t, time.Minute, "the router to refuse alpha-hijack's instance of beta-web", func() error {
		resp, err := http.Get(metrics)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !refused.Match(b) {
			return fmt.Errorf("no refused instance of beta in the router's metrics")
		}
		return nil
	})
	status := fmt.Sprintf("http://%s:%d/status", g.Options.Bind, g.Options.RouterPort+1)
	waitAppStatus(t, status, "beta", 10*time.Second, "beta with its own dyno only", func(a router.AppStatus) bool { return a.Dynos == 1 })
	routerURL := "http://" + g.Options.RouterAddr()
	if code, body := through(t, routerURL, "www.beta-stolen.test", "/"); code != http.StatusNotFound {
		t.Errorf("the domain alpha-hijack names as beta's answered %d %q, want 404", code, body)
	}
	for i := 0; i < 10; i++ {
		if code, body := through(t, routerURL, "beta.localhost", "/"); code != http.StatusOK {
			t.Fatalf("beta's request %d: %d %q, want 200 from beta's own dyno", i, code, body)
		}
	}
}
