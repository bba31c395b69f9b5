package addonhost_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoenig/test/must"

	"github.com/dynogrid/dynogrid/plugins/addon"
	"github.com/dynogrid/dynogrid/plugins/addon/addonhost"
	"github.com/dynogrid/dynogrid/plugins/addon/addontest"
)

func cacheDescription(context.Context) (addon.Description, error) {
	return addon.Description{Name: "cache", Plans: []addon.Plan{{Name: "small"}, {Name: "large"}}, EnvVars: []string{"CACHE_URL", "CACHE_TOKEN"}}, nil
}

// inProcess returns a host whose only add-on is m, in process, named cache.
func inProcess(t *testing.T, m *addontest.Mock, provisionTimeout time.Duration) *addonhost.Host {
	t.Helper()
	h, err := addonhost.New(addonhost.Options{
		InProcess:        map[string]addon.Addon{"cache": m},
		Settings:         map[string]map[string]string{"cache": {"size": "64"}},
		StateDir:         t.TempDir(),
		ProvisionTimeout: provisionTimeout,
	})
	must.NoError(t, err)
	return h
}

// TestHost_InProcessAddonGetsThePluginsTreatment calls an in-process add-on through the
// host: it is configured with its settings and state directory, its default plan is
// resolved, and its answers pass the same checks as a plugin's.
func TestHost_InProcessAddonGetsThePluginsTreatment(t *testing.T) {
	t.Parallel()
	var cfg addon.Config
	var req addon.ProvisionRequest
	answer := map[string]string{"CACHE_URL": "cache://shop", "CACHE_TOKEN": "t"}
	m := &addontest.Mock{
		ConfigureFunc: func(_ context.Context, c addon.Config) error { cfg = c; return nil },
		DescribeFunc:  cacheDescription,
		ProvisionFunc: func(_ context.Context, r addon.ProvisionRequest) (addon.Resource, error) {
			req = r
			return addon.Resource{ID: "c-" + r.RequestID, Env: answer}, nil
		},
	}
	h := inProcess(t, m, 0)
	ctx := context.Background()

	res, err := h.Provision(ctx, "cache", addon.ProvisionRequest{RequestID: "r1", App: "shop"})
	must.NoError(t, err)
	must.Eq(t, "c-r1", res.ID)
	must.Eq(t, "small", req.Plan, must.Sprint("the first plan, as no default is declared"))
	must.Eq(t, "64", cfg.Settings["size"])
	must.Eq(t, "cache", filepath.Base(cfg.StateDir))
	_, err = os.Stat(cfg.StateDir)
	must.NoError(t, err, must.Sprint("the state directory exists"))

	delete(answer, "CACHE_TOKEN")
	_, err = h.Provision(ctx, "cache", addon.ProvisionRequest{RequestID: "r2", App: "shop"})
	must.Eq(t, addonhost.KindInvalidAnswer, addonhost.KindOf(err), must.Sprintf("error: %v", err))
	must.EqError(t, err, `add-on "cache": provision: invalid answer: declared variable CACHE_TOKEN is missing from the answer`)

	_, err = h.Provision(ctx, "cache", addon.ProvisionRequest{RequestID: "r3", App: "shop", Plan: "huge"})
	must.Eq(t, addonhost.KindInvalidRequest, addonhost.KindOf(err), must.Sprintf("error: %v", err))

	names, err := h.List()
	must.NoError(t, err)
	must.Eq(t, []string{"cache"}, names)
}

func TestHost_InProcessFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	req := addon.ProvisionRequest{RequestID: "r1", App: "shop"}

	t.Run("its own error", func(t *testing.T) {
		t.Parallel()
		h := inProcess(t, &addontest.Mock{DescribeFunc: cacheDescription,
			ProvisionFunc: func(context.Context, addon.ProvisionRequest) (addon.Resource, error) {
				return addon.Resource{}, errors.New("the cache cluster is full")
			}}, 0)
		_, err := h.Provision(ctx, "cache", req)
		must.Eq(t, addonhost.KindRejected, addonhost.KindOf(err))
		must.EqError(t, err, `add-on "cache": provision: rejected: the cache cluster is full`)
	})

	t.Run("its own error, with terminal escapes", func(t *testing.T) {
		t.Parallel()
		h := inProcess(t, &addontest.Mock{DescribeFunc: cacheDescription,
			ProvisionFunc: func(context.Context, addon.ProvisionRequest) (addon.Resource, error) {
				return addon.Resource{}, errors.New("full\x1b[2J\r\nfake: Error: \u009bline\xff")
			}}, 0)
		_, err := h.Provision(ctx, "cache", req)
		must.Eq(t, addonhost.KindRejected, addonhost.KindOf(err))
		must.EqError(t, err, `add-on "cache": provision: rejected: full\x1b[2J  fake: Error: \u009bline\xff`)
	})

	t.Run("a panic", func(t *testing.T) {
		t.Parallel()
		h := inProcess(t, &addontest.Mock{DescribeFunc: cacheDescription,
			ProvisionFunc: func(context.Context, addon.ProvisionRequest) (addon.Resource, error) { panic("nil map") }}, 0)
		_, err := h.Provision(ctx, "cache", req)
		must.Eq(t, addonhost.KindInvalidAnswer, addonhost.KindOf(err))
		must.ErrorContains(t, err, "the call panicked: nil map")
	})

	t.Run("no answer before the deadline", func(t *testing.T) {
		t.Parallel()
		h := inProcess(t, &addontest.Mock{DescribeFunc: cacheDescription,
			ProvisionFunc: func(ctx context.Context, _ addon.ProvisionRequest) (addon.Resource, error) {
				<-ctx.Done()
				return addon.Resource{}, ctx.Err()
			}}, 50*time.Millisecond)
		p, err := h.Open(ctx, "cache")
		must.NoError(t, err)
		defer p.Close()
		_, err = p.Provision(ctx, req)
		must.Eq(t, addonhost.KindTimeout, addonhost.KindOf(err), must.Sprintf("error: %v", err))
		must.True(t, addonhost.Retryable(err))
		_, err = p.Provision(ctx, req)
		must.ErrorContains(t, err, "stopped after an earlier failure")
		must.Eq(t, 0, p.Pid(), must.Sprint("no process"))
	})

	t.Run("another name", func(t *testing.T) {
		t.Parallel()
		h := inProcess(t, &addontest.Mock{DescribeFunc: func(context.Context) (addon.Description, error) {
			return addon.Description{Name: "redis", Plans: []addon.Plan{{Name: "a"}}, EnvVars: []string{"REDIS_URL"}}, nil
		}}, 0)
		_, err := h.Describe(ctx, "cache")
		must.Eq(t, addonhost.KindInvalidAnswer, addonhost.KindOf(err))
		must.ErrorContains(t, err, `the in-process add-on calls itself "redis" but the host holds it as "cache"`)
	})

	t.Run("no such add-on", func(t *testing.T) {
		t.Parallel()
		h := inProcess(t, &addontest.Mock{}, 0)
		_, err := h.Describe(ctx, "postgres")
		must.Eq(t, addonhost.KindNotFound, addonhost.KindOf(err))
		must.EqError(t, err, `add-on "postgres": find: not found: no in-process add-on of that name, and no plugin directory`)
	})
}

func TestHost_InProcessNamesAreChecked(t *testing.T) {
	t.Parallel()
	_, err := addonhost.New(addonhost.Options{InProcess: map[string]addon.Addon{"Bad_Name": &addontest.Mock{}}})
	must.ErrorContains(t, err, `in-process add-on "Bad_Name" needs a valid name`)
	_, err = addonhost.New(addonhost.Options{})
	must.EqError(t, err, "no add-on plugin directory configured")
}

func TestHost_ListsInProcessAddonsWithThePlugins(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"cache", "other"} {
		must.NoError(t, os.WriteFile(filepath.Join(dir, addon.BinaryPrefix+name), []byte("#!/bin/sh\n"), 0o755))
	}
	h, err := addonhost.New(addonhost.Options{PluginDir: dir, InProcess: map[string]addon.Addon{"cache": &addontest.Mock{}, "mock": &addontest.Mock{}}})
	must.NoError(t, err)
	names, err := h.List()
	must.NoError(t, err)
	must.Eq(t, []string{"cache", "mock", "other"}, names, must.Sprint("an in-process add-on is listed once, in place of a binary of its name"))
}
