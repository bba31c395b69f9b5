package e2e

import (
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/multihost"
)

// TestReleasesUnderLoad keeps an open-loop load on the app through the router while it
// is released again, scaled up, scaled down and rolled back: every request must be
// answered 200 (issue 7, scenario 5, on one host).
func TestReleasesUnderLoad(t *testing.T) {
	t.Parallel()
	g, consul, c := routedApp(t, "steady", "")

	load := multihost.StartLoad(g.Options.RouterAddr(), "steady.localhost", "/sleep?ms=20", 20)
	defer load.Stop()
	start := time.Now()
	c.must("config:set", "RELEASE_NOTE=second")
	c.must("ps:scale", "web=3")
	passingDynos(t, consul, "steady", 3, time.Minute)
	c.must("ps:scale", "web=1")
	passingDynos(t, consul, "steady", 1, time.Minute)
	c.must("rollback", "v1")
	passingDynos(t, consul, "steady", 1, time.Minute)
	// Let the last dynos that were stopped finish what they had.
	waitMoreAnswers(t, load, 20)
	s := multihost.Summarize(load.Stop())
	t.Logf("release, scale up, scale down and rollback in %s under load: %s", time.Since(start).Round(time.Millisecond), s)
	if s.Sent < 100 || s.FailedTotal() != 0 {
		t.Errorf("want every request answered 200 through the changes; got %s", s)
	}
}
