package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/slug"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// BenchmarkBuild measures `dyno deploy` of the Node.js test app (npm ci of one package
// from the npm registry) with a cold build cache (a new app) and a warm one (the same
// source again), against its peer: a deploy without a build, of the example Thin app.
// It prints the medians over BENCH_ROUNDS rounds (default 3), and the size of the built
// slug against the source packed as it is.
func BenchmarkBuild(b *testing.B) {
	g := harness.Grid(b)
	machine := testutil.MachineState()
	var cold, warm, plain []time.Duration
	var built, source int64
	timed := func(c *dynoCLI, dir string) time.Duration {
		start := time.Now()
		c.must("deploy", dir)
		return time.Since(start)
	}
	for i := range b.N * scaleRounds() {
		app := fmt.Sprintf("nodebench%d", i)
		dir := copyBuildApp(b, "nodeapp", app)
		c := newCLI(b, g, app)
		cold = append(cold, timed(c, dir))
		warm = append(warm, timed(c, dir))
		plainApp := fmt.Sprintf("plainbench%d", i)
		plainDir := harness.CopyExample(b, plainApp)
		writeSpec(b, plainDir, fmt.Sprintf("app %q {\n  procfile = \"Procfile\"\n}\n", plainApp))
		plain = append(plain, timed(newCLI(b, g, plainApp), plainDir))

		nomad := appNomad(b, g, app)
		job, _, err := nomad.Jobs().Info(app, nil)
		if err != nil {
			b.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(g.Options.DataDir, "slug-store", job.Meta[deploy.MetaSlug]+".tar.gz"))
		if err != nil {
			b.Fatal(err)
		}
		built = st.Size()
		s, err := slug.Pack(dir, b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		source = s.Size
	}
	var out strings.Builder
	fmt.Fprintf(&out, "dyno deploy of the Node.js test app (npm ci, 1 package), %d rounds, medians\n", len(cold))
	fmt.Fprintf(&out, "  build, cold cache (new app):        %s ms\n", ms(median(cold)))
	fmt.Fprintf(&out, "  build, warm cache (same source):    %s ms (%.2fx of cold)\n", ms(median(warm)), float64(median(warm))/float64(median(cold)))
	fmt.Fprintf(&out, "  peer: deploy without a build (example Thin app): %s ms; cold build adds %s ms, warm %s ms\n",
		ms(median(plain)), ms(median(cold)-median(plain)), ms(median(warm)-median(plain)))
	fmt.Fprintf(&out, "  slug: %d KB built, source as it is %d KB\n", built/1024, source/1024)
	fmt.Fprintf(&out, "machine before: %s\nmachine after:  %s\n", machine, testutil.MachineState())
	fmt.Print("\n" + out.String())
	b.ReportMetric(median(cold).Seconds(), "cold-deploy-s")
	b.ReportMetric(median(warm).Seconds(), "warm-deploy-s")
	b.ReportMetric(median(plain).Seconds(), "plain-deploy-s")
	b.ReportMetric(float64(built), "slug-bytes")
}
