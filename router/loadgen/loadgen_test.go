package loadgen

import (
	"context"
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

// The load generator's own queue sends each request to an idle backend only: with one
// backend, a burst of requests reaches it one at a time.
func TestClientQueueHoldsOneRequestPerBackend(t *testing.T) {
	t.Parallel()
	bs, err := StartBackends(1)
	if err != nil {
		t.Fatal(err)
	}
	defer StopBackends(bs)
	q := NewClientQueue([]string{bs[0].Addr})
	tr := Trace{}
	for i := 0; i < 20; i++ {
		tr = append(tr, Request{At: time.Duration(i) * 100 * time.Microsecond, Service: time.Millisecond})
	}
	lat, errs, err := Run(context.Background(), Client(), Target{Name: "q", Queue: q}, tr)
	if errs != 0 || len(lat) != len(tr) {
		t.Fatalf("%d answered, %d failed: %v", len(lat), errs, err)
	}
	if n := bs[0].Overlaps.Load(); n != 0 {
		t.Fatalf("the backend saw %d overlapping requests", n)
	}
	// 20 requests of 1 ms on one backend: the last answer comes after at least 20 ms.
	if s := Summarise(lat, 0); s.P99 < 15*time.Millisecond {
		t.Fatalf("requests did not wait for the backend: %v", s)
	}
}
