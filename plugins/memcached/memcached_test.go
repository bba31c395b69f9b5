package memcached

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	"github.com/shoenig/test/must"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/plugins/addon"
	"github.com/dynogrid/dynogrid/plugins/addon/addonhost"
	"github.com/dynogrid/dynogrid/plugins/addon/addontest"
	"github.com/dynogrid/dynogrid/policies"
)

// TestMemcached_OnARealGrid runs the add-on against real Consul and Nomad agents: each
// attachment becomes a Nomad job running /usr/bin/memcached. The subtests share the grid
// and run in order.
func TestMemcached_OnARealGrid(t *testing.T) {
	g := harness.Grid(t, func(o *devgrid.Options) { o.ExtraNomadConfig += NomadClientConfig("") })
	pluginDir := addontest.Build(t, "../../cmd/dyno-addon-memcached", Name)
	nomad, err := g.NomadClient()
	must.NoError(t, err)
	nomad.SetNamespace(policies.AddonNamespace)
	// The add-on gets only its own least-privilege token, as on a real grid.
	settings := map[string]string{
		"nomad_addr":      "http://" + g.Options.NomadAddr(),
		"nomad_token":     harness.Tokens(t, g).Nomad[policies.NomadAddonMemcached],
		"nomad_namespace": policies.AddonNamespace,
	}
	h, err := addonhost.New(addonhost.Options{
		PluginDir:        pluginDir,
		Settings:         map[string]map[string]string{Name: settings},
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "host", Level: hclog.Warn}),
		ProvisionTimeout: 90 * time.Second,
	})
	must.NoError(t, err)
	ctx := context.Background()

	var alpha, bravo addon.Resource
	t.Run("provision and retry", func(t *testing.T) {
		start := time.Now()
		alpha, err = h.Provision(ctx, Name, addon.ProvisionRequest{RequestID: "mc-a", App: "alpha"})
		must.NoError(t, err)
		t.Logf("memcached ready in %s at %s", time.Since(start).Round(time.Millisecond), alpha.Env["MEMCACHED_SERVERS"])
		must.Eq(t, JobID("alpha", "mc-a"), alpha.ID)
		must.StrHasPrefix(t, "127.0.0.1:", alpha.Env["MEMCACHED_SERVERS"])
		must.Eq(t, "alpha", alpha.Env["MEMCACHED_USERNAME"])
		must.NoError(t, setGet(alpha, "greeting", "hello alpha"))

		again, err := h.Provision(ctx, Name, addon.ProvisionRequest{RequestID: "mc-a", App: "alpha"})
		must.NoError(t, err)
		must.Eq(t, alpha, again, must.Sprint("a retry answers the same memcached"))
		jobs, _, err := nomad.Jobs().PrefixList("addon-memcached-alpha")
		must.NoError(t, err)
		must.Len(t, 1, jobs)
		v, err := get(alpha, "greeting")
		must.NoError(t, err)
		must.Eq(t, "hello alpha", v, must.Sprint("the retry did not restart memcached"))
	})
	if alpha.ID == "" {
		t.FailNow()
	}

	t.Run("apps are isolated", func(t *testing.T) {
		bravo, err = h.Provision(ctx, Name, addon.ProvisionRequest{RequestID: "mc-b", App: "bravo", Plan: "standard"})
		must.NoError(t, err)
		must.NotEq(t, alpha.Env["MEMCACHED_SERVERS"], bravo.Env["MEMCACHED_SERVERS"])
		must.NoError(t, setGet(bravo, "greeting", "hello bravo"))
		v, err := get(alpha, "greeting")
		must.NoError(t, err)
		must.Eq(t, "hello alpha", v, must.Sprint("separate keyspaces"))

		// alpha's credentials, or none, against bravo's memcached.
		intruder := bravo
		intruder.Env = map[string]string{"MEMCACHED_SERVERS": bravo.Env["MEMCACHED_SERVERS"],
			"MEMCACHED_USERNAME": alpha.Env["MEMCACHED_USERNAME"], "MEMCACHED_PASSWORD": alpha.Env["MEMCACHED_PASSWORD"]}
		_, err = get(intruder, "greeting")
		must.ErrorContains(t, err, "authentication refused")
		line, err := raw(bravo.Env["MEMCACHED_SERVERS"], "get greeting\r\n")
		must.NoError(t, err)
		must.StrContains(t, line, "CLIENT_ERROR", must.Sprint("no credentials, no data"))

		job, _, err := nomad.Jobs().Info(bravo.ID, nil)
		must.NoError(t, err)
		must.Eq(t, 256+32, *job.TaskGroups[0].Tasks[0].Resources.MemoryMB, must.Sprint("the standard plan"))
		must.False(t, strings.Contains(fmt.Sprintf("%+v", job), bravo.Env["MEMCACHED_PASSWORD"]), must.Sprint("no password in the job spec"))
	})

	t.Run("service in consul", func(t *testing.T) {
		consul, err := g.ConsulClient()
		must.NoError(t, err)
		var entries []*consulapi.ServiceEntry
		testutil.WaitFor(t, 30*time.Second, "service "+alpha.ID+" passing in Consul", func() error {
			var err error
			if entries, _, err = consul.Health().Service(alpha.ID, "", true, nil); err != nil {
				return err
			}
			if len(entries) != 1 {
				return fmt.Errorf("%d passing entries", len(entries))
			}
			return nil
		})
		addr := net.JoinHostPort(entries[0].Service.Address, fmt.Sprint(entries[0].Service.Port))
		must.Eq(t, alpha.Env["MEMCACHED_SERVERS"], addr)
	})

	t.Run("killed mid-call then retry", func(t *testing.T) {
		p, err := h.Open(ctx, Name)
		must.NoError(t, err)
		defer p.Close()
		req := addon.ProvisionRequest{RequestID: "mc-c", App: "crashy"}
		errc := make(chan error, 1)
		go func() {
			_, err := p.Provision(ctx, req)
			errc <- err
		}()
		testutil.WaitFor(t, 30*time.Second, "the plugin to submit the job", func() error {
			_, _, err := nomad.Jobs().Info(JobID(req.App, req.RequestID), nil)
			return err
		})
		must.NoError(t, syscall.Kill(p.Pid(), syscall.SIGKILL))
		err = <-errc
		must.Eq(t, addonhost.KindCrashed, addonhost.KindOf(err), must.Sprintf("error: %v", err))
		r, err := h.Provision(ctx, Name, req)
		must.NoError(t, err)
		must.Eq(t, JobID(req.App, req.RequestID), r.ID)
		must.NoError(t, setGet(r, "k", "v"))
		jobs, _, err := nomad.Jobs().PrefixList("addon-memcached-crashy")
		must.NoError(t, err)
		must.Len(t, 1, jobs, must.Sprint("one job, not two"))
		must.NoError(t, h.Deprovision(ctx, Name, addon.DeprovisionRequest{RequestID: "del", ResourceID: r.ID, App: req.App}))
	})

	t.Run("conformance", func(t *testing.T) {
		p := addontest.Launch(t, pluginDir, Name, settings)
		addontest.Conformance(t, addontest.PluginTarget(p), addontest.Options{
			App:       "conform",
			CheckMade: func(t *testing.T, r addon.Resource) { must.NoError(t, setGet(r, "k", "v")) },
			CheckGone: func(t *testing.T, r addon.Resource) {
				_, _, err := nomad.Jobs().Info(r.ID, nil)
				must.Error(t, err, must.Sprint("the job is purged"))
			},
		})
	})

	t.Run("deprovision", func(t *testing.T) {
		err := h.Deprovision(ctx, Name, addon.DeprovisionRequest{RequestID: "del", ResourceID: alpha.ID, App: "bravo"})
		must.ErrorContains(t, err, "left alone", must.Sprint("another app's memcached"))
		for _, r := range []struct {
			res addon.Resource
			app string
		}{{alpha, "alpha"}, {bravo, "bravo"}} {
			req := addon.DeprovisionRequest{RequestID: "del", ResourceID: r.res.ID, App: r.app}
			must.NoError(t, h.Deprovision(ctx, Name, req))
			_, err := get(r.res, "greeting")
			must.Error(t, err, must.Sprint("memcached stopped"))
			v, _, err := nomad.Variables().Peek(variablePath(r.res.ID), nil)
			must.NoError(t, err)
			must.Nil(t, v, must.Sprint("credentials deleted"))
			must.NoError(t, h.Deprovision(ctx, Name, req), must.Sprint("twice is success"))
		}
	})

	t.Run("a memcached that cannot be placed", func(t *testing.T) {
		nowhere, err := addonhost.New(addonhost.Options{
			PluginDir: pluginDir,
			Settings:  map[string]map[string]string{Name: {"nomad_addr": settings["nomad_addr"], "nomad_token": settings["nomad_token"], "nomad_namespace": settings["nomad_namespace"], "datacenters": "nowhere"}},
		})
		must.NoError(t, err)
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		start := time.Now()
		_, err = nowhere.Provision(cctx, Name, addon.ProvisionRequest{RequestID: "mc-nowhere", App: "lost"})
		must.Error(t, err)
		t.Logf("error after %s: %v", time.Since(start).Round(time.Millisecond), err)
		must.StrContains(t, err.Error(), "cannot be placed")
		must.Less(t, 10*time.Second, time.Since(start), must.Sprint("fails fast"))
		must.NoError(t, h.Deprovision(ctx, Name, addon.DeprovisionRequest{RequestID: "del", ResourceID: JobID("lost", "mc-nowhere"), App: "lost"}))
	})

	t.Run("a memcached that cannot start", func(t *testing.T) {
		bad, err := addonhost.New(addonhost.Options{
			PluginDir: pluginDir,
			Settings:  map[string]map[string]string{Name: {"nomad_addr": settings["nomad_addr"], "nomad_token": settings["nomad_token"], "nomad_namespace": settings["nomad_namespace"], "memcached_path": "/nonexistent/memcached"}},
		})
		must.NoError(t, err)
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		_, err = bad.Provision(cctx, Name, addon.ProvisionRequest{RequestID: "mc-bad", App: "broken"})
		must.Error(t, err)
		t.Logf("error: %v", err)
		must.StrContains(t, err.Error(), "failed to run")
		must.NoError(t, h.Deprovision(ctx, Name, addon.DeprovisionRequest{RequestID: "del", ResourceID: JobID("broken", "mc-bad"), App: "broken"}))
	})
}

// raw sends one command and returns the first line of the answer.
func raw(addr, cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte(cmd)); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

// session opens an authenticated connection to the resource's memcached.
func session(r addon.Resource) (net.Conn, *bufio.Reader, error) {
	c, err := net.DialTimeout("tcp", r.Env["MEMCACHED_SERVERS"], 2*time.Second)
	if err != nil {
		return nil, nil, err
	}
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	br := bufio.NewReader(c)
	token := r.Env["MEMCACHED_USERNAME"] + " " + r.Env["MEMCACHED_PASSWORD"]
	fmt.Fprintf(c, "set auth 0 0 %d\r\n%s\r\n", len(token), token)
	line, err := br.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "STORED" {
		c.Close()
		return nil, nil, fmt.Errorf("authentication refused: %q %v", line, err)
	}
	return c, br, nil
}

func setGet(r addon.Resource, k, v string) error {
	c, br, err := session(r)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(c, "set %s 0 0 %d\r\n%s\r\n", k, len(v), v)
	if line, _ := br.ReadString('\n'); strings.TrimSpace(line) != "STORED" {
		return fmt.Errorf("set answered %q", line)
	}
	got, err := get(r, k)
	if err != nil {
		return err
	}
	if got != v {
		return fmt.Errorf("get %s = %q, want %q", k, got, v)
	}
	return nil
}

func get(r addon.Resource, k string) (string, error) {
	c, br, err := session(r)
	if err != nil {
		return "", err
	}
	defer c.Close()
	fmt.Fprintf(c, "get %s\r\n", k)
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(line) == "END" {
		return "", fmt.Errorf("no key %s", k)
	}
	var key string
	var flags, n int
	if _, err := fmt.Sscanf(line, "VALUE %s %d %d", &key, &flags, &n); err != nil {
		return "", fmt.Errorf("get answered %q", line)
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(br, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
