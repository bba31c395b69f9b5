package loadgen

import (
	"math"
	"testing"
	"time"
)

func TestPoissonIsSeededAndHasTheRightRate(t *testing.T) {
	t.Parallel()
	a := Poisson(7, 20000, 720, 10*time.Millisecond)
	b := Poisson(7, 20000, 720, 10*time.Millisecond)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different trace at %d", i)
		}
	}
	rate := float64(len(a)) / a.Duration().Seconds()
	var svc time.Duration
	for _, r := range a {
		svc += r.Service
	}
	mean := svc / time.Duration(len(a))
	if math.Abs(rate-720)/720 > 0.03 || math.Abs(float64(mean-10*time.Millisecond))/1e7 > 0.03 {
		t.Fatalf("rate %.1f/s mean service %s, want 720/s and 10ms", rate, mean)
	}
}

func TestIdealBeatsRandom(t *testing.T) {
	t.Parallel()
	tr := Poisson(1, 20000, RateFor(0.9, 8, 10*time.Millisecond), 10*time.Millisecond)
	ideal := Summarise(Ideal(tr, 8), 0)
	random := Summarise(Random(tr, 8, 3), 0)
	if ideal.P99 <= 0 || random.P99 < 3*ideal.P99 {
		t.Fatalf("ideal %v random %v: random routing should be far worse at 0.9", ideal, random)
	}
	// One server, no queueing when arrivals are spaced: latency is the service time.
	spaced := Trace{{At: 0, Service: time.Millisecond}, {At: time.Second, Service: 2 * time.Millisecond}}
	if got := Ideal(spaced, 1); got[0] != time.Millisecond || got[1] != 2*time.Millisecond {
		t.Fatalf("ideal on spaced trace %v", got)
	}
	queued := Trace{{At: 0, Service: 10 * time.Millisecond}, {At: time.Millisecond, Service: time.Millisecond}}
	if got := Ideal(queued, 1); got[1] != 10*time.Millisecond {
		t.Fatalf("second request waits 9ms then serves 1ms: got %v", got[1])
	}
}
