package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/plugins/addon"
	"github.com/dynogrid/dynogrid/plugins/addon/addonhost"
	"github.com/dynogrid/dynogrid/plugins/addon/addontest"
)

// BenchmarkProvision measures what the CLI pays per add-on operation: start the plugin
// process, handshake with mutual TLS, Configure, Describe, Provision, stop (ns/op). The
// peer, run the same number of times in the same run, is the same Provision over gRPC
// inside the process with no plugin process; plugin-vs-inprocess is the ratio.
func BenchmarkProvision(b *testing.B) {
	dir := addontest.Build(b, ".", "secretkey")
	h, err := addonhost.New(addonhost.Options{PluginDir: dir, StateDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	a := addontest.InProcess(b, &SecretKey{}, addon.Config{StateDir: b.TempDir()})
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := a.Provision(ctx, addon.ProvisionRequest{RequestID: fmt.Sprint("p", i), App: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
	peer := time.Since(start)

	b.ResetTimer()
	start = time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := h.Provision(ctx, "secretkey", addon.ProvisionRequest{RequestID: fmt.Sprint("p", i), App: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(time.Since(start))/float64(peer), "plugin-vs-inprocess")
	b.ReportMetric(float64(peer.Nanoseconds())/float64(b.N)/1e6, "inprocess-ms/op")
}
