package e2e

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// timeScale runs `dyno ps:scale web=<to>` on app, whose web dynos are all routed, and
// returns how long until the router routes every new dyno, and the CPU the machine spent
// until then. It watches nothing but the router's /status (every 10 ms): the figure a
// user meets, without traceScale's own work (its health checks of every new dyno every
// 10 ms and its blocking queries to Nomad and Consul), which takes CPU from the dynos
// booting on a small machine.
func timeScale(tb testing.TB, g *devgrid.Grid, c *dynoCLI, app string, from, to int) (routed, cpu time.Duration) {
	tb.Helper()
	status := fmt.Sprintf("http://%s:%d/status", g.Options.Bind, g.Options.RouterPort+1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	up, err := routerUpDynos(ctx, status, app)
	if err != nil || len(up) != from {
		tb.Fatalf("the router has %d dynos of %s up before the scale (%v), want %d", len(up), app, err, from)
	}
	before := map[string]bool{}
	for _, id := range up {
		before[id] = true
	}
	done := make(chan error, 1)
	var cpuEnd time.Duration
	var end time.Time
	go func() {
		err := awaitRouted(ctx, status, app, to-from, func(sid string) bool { return !before[sid] }, func(string, time.Time) {})
		end, cpuEnd = time.Now(), machineCPU(tb)
		done <- err
	}()
	cpuStart := machineCPU(tb)
	start := time.Now()
	if code, out, errOut := c.run("ps:scale", append([]string{fmt.Sprintf("web=%d", to)}, consulFlags(tb, g)...)...); code != 0 {
		tb.Fatalf("dyno ps:scale web=%d: exit %d\n%s%s", to, code, out, errOut)
	}
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
	return end.Sub(start), cpuEnd - cpuStart
}

// waitQuiet waits until the machine is idle: a quarter of a second in which its cores
// were busy less than a tenth of the time, as after the work of a scale-down (Nomad's
// and the kernel's tear-down of the dynos) is done. It gives up after 20 s and says so.
func waitQuiet(tb testing.TB) {
	tb.Helper()
	const window = 250 * time.Millisecond
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		start := machineCPU(tb)
		pause(context.Background(), window)
		busy := machineCPU(tb) - start
		if busy*10 < window*time.Duration(runtime.NumCPU()) {
			return
		}
	}
	tb.Logf("the machine did not become idle within 20 s; measuring anyway (%s)", testutil.MachineState())
}
