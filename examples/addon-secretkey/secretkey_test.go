package main

import (
	"context"
	"testing"

	"github.com/dynogrid/dynogrid/plugins/addon"
	"github.com/dynogrid/dynogrid/plugins/addon/addontest"
)

// TestBinary builds the add-on and runs it as the platform does: a separate process
// started by the host, over gRPC with mutual TLS.
func TestBinary(t *testing.T) {
	t.Parallel()
	dir := addontest.Build(t, ".", "secretkey")
	p := addontest.Launch(t, dir, "secretkey", map[string]string{"bytes": "32"})
	addontest.Conformance(t, addontest.PluginTarget(p), addontest.Options{
		CheckMade: func(t *testing.T, r addon.Resource) {
			if got := len(r.Env["SECRET_KEY_BASE"]); got != 64 {
				t.Fatalf("SECRET_KEY_BASE has %d hex digits, want 64 (32 bytes)", got)
			}
		},
	})
}

// TestInProcess runs the same checks without building, for a fast edit-test loop.
func TestInProcess(t *testing.T) {
	t.Parallel()
	a := addontest.InProcess(t, &SecretKey{}, addon.Config{StateDir: t.TempDir()})
	addontest.Conformance(t, a, addontest.Options{App: "blog"})
}

func TestBadSetting(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"x", "8", "4096"} {
		err := (&SecretKey{}).Configure(context.Background(), addon.Config{Settings: map[string]string{"bytes": v}, StateDir: t.TempDir()})
		if err == nil {
			t.Fatalf("bytes=%q was accepted", v)
		}
	}
}

func TestKeysStayWithTheirApp(t *testing.T) {
	t.Parallel()
	a := addontest.InProcess(t, &SecretKey{}, addon.Config{StateDir: t.TempDir()})
	ctx := context.Background()
	r, err := a.Provision(ctx, addon.ProvisionRequest{RequestID: "r1", App: "blog"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Provision(ctx, addon.ProvisionRequest{RequestID: "r1", App: "shop"}); err == nil {
		t.Fatal("another app got blog's key by reusing its request ID")
	}
	if err := a.Deprovision(ctx, addon.DeprovisionRequest{RequestID: "d1", ResourceID: r.ID, App: "shop"}); err == nil {
		t.Fatal("another app deleted blog's key")
	}
}
