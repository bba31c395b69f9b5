package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/internal/build"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/slug"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// BenchmarkBuild measures the build step of `dyno deploy` (build.Run: the build dyno's
// start, the source and cache in, npm ci, the compiled app and cache out) of the Node.js
// test app, one package from the npm registry, with a cold build cache (a new app) and a
// warm one (the same source again), against its peer: what a deploy without a build
// does in its place, packing the source directory as it is. It prints the medians over
// BENCH_ROUNDS rounds (default 3) and the built slug's size against the source's.
func BenchmarkBuild(b *testing.B) {
	g := harness.Grid(b)
	machine := testutil.MachineState()
	var cold, warm, plain []time.Duration
	var built, source int64
	store := filepath.Join(g.Options.DataDir, "slug-store")
	for i := range b.N * scaleRounds() {
		app := fmt.Sprintf("nodebench%d", i)
		spec, diags := appspec.Load(copyBuildApp(b, "nodeapp", app))
		if diags.HasErrors() {
			b.Fatal(appspec.FormatDiagnostics(diags))
		}
		d := &deploy.Deployer{Nomad: appNomad(b, g, app), SlugStore: store, Progress: io.Discard}
		timed := func() (time.Duration, *build.Result) {
			start := time.Now()
			res, err := build.Run(context.Background(), d, spec, build.Options{Output: io.Discard})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = os.RemoveAll(res.Dir) })
			return time.Since(start), res
		}
		c, _ := timed()
		w, res := timed()
		cold, warm = append(cold, c), append(warm, w)

		start := time.Now()
		s, err := slug.Pack(spec.Dir, b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		plain = append(plain, time.Since(start))
		source = s.Size
		bs, err := slug.Pack(res.Dir, b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		built = bs.Size
	}
	var out strings.Builder
	fmt.Fprintf(&out, "build step of dyno deploy, the Node.js test app (npm ci, 1 package), %d rounds, medians\n", len(cold))
	fmt.Fprintf(&out, "  build, cold cache (new app):     %s ms\n", ms(median(cold)))
	fmt.Fprintf(&out, "  build, warm cache (same source): %s ms (%.2fx of cold)\n", ms(median(warm)), float64(median(warm))/float64(median(cold)))
	fmt.Fprintf(&out, "  peer: no build, the source packed as it is: %s ms\n", ms(median(plain)))
	fmt.Fprintf(&out, "  slug: %d bytes built, %d bytes the source as it is\n", built, source)
	fmt.Fprintf(&out, "machine before: %s\nmachine after:  %s\n", machine, testutil.MachineState())
	fmt.Print("\n" + out.String())
	b.ReportMetric(median(cold).Seconds(), "cold-build-s")
	b.ReportMetric(median(warm).Seconds(), "warm-build-s")
	b.ReportMetric(float64(built), "slug-bytes")
}
