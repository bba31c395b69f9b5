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
	// A hand-off of 1 ms: the second request waits 10 ms, then serves 2.
	if got := Ideal(queued.Lengthened(time.Millisecond), 1); got[1] != 12*time.Millisecond || queued[1].Service != time.Millisecond {
		t.Fatalf("lengthened by 1ms: second request took %v (the trace itself: %v)", got[1], queued[1].Service)
	}
}

// The load generator's own queue sends each request to an idle backend only: with one
// backend, a burst of requests reaches it one at a time.
func TestClientQueueHoldsOneRequestPerBackend(t *testing.T) {
	t.Parallel()
	b := startBackend(t)
	q := NewClientQueue([]string{b.Addr})
	tr := Trace{}
	for i := 0; i < 20; i++ {
		tr = append(tr, Request{At: time.Duration(i) * 100 * time.Microsecond, Service: time.Millisecond})
	}
	lat, errs, err := Run(context.Background(), Client(), Target{Name: "q", Queue: q}, tr)
	if errs != 0 || len(lat) != len(tr) {
		t.Fatalf("%d answered, %d failed: %v", len(lat), errs, err)
	}
	if n := b.Overlaps.Load(); n != 0 {
		t.Fatalf("the backend saw %d overlapping requests", n)
	}
	// 20 requests of 1 ms on one backend: the last answer comes after at least 20 ms.
	if s := Summarise(lat, 0); s.P99 < 15*time.Millisecond {
		t.Fatalf("requests did not wait for the backend: %v", s)
	}
}

// HandOff averages only the gaps in which the next request was already waiting: a
// backend idle between spaced requests counts no hand-off. (Not parallel: a request
// delayed by the length of a spacing would be a hand-off.)
func TestHandOffCountsOnlyWaitingRequests(t *testing.T) {
	run := func(tr Trace) *Measured {
		b := startBackend(t)
		m := NewMeasured(len(tr))
		b.Served = m
		q := NewClientQueue([]string{b.Addr})
		if lat, errs, err := Run(context.Background(), Client(), Target{Name: "q", Queue: q}, tr); errs != 0 || len(lat) != len(tr) {
			t.Fatalf("%d answered, %d failed: %v", len(lat), errs, err)
		}
		return m
	}
	var spaced, burst Trace
	for i := 0; i < 10; i++ {
		spaced = append(spaced, Request{At: time.Duration(i) * 50 * time.Millisecond, Service: time.Millisecond})
		burst = append(burst, Request{At: time.Duration(i) * 10 * time.Microsecond, Service: 2 * time.Millisecond})
	}
	if m := run(spaced); m.HandOffs() != 0 {
		t.Fatalf("spaced requests: %d hand-offs (mean %s), want none", m.HandOffs(), m.HandOff())
	}
	// The first request finds the backend idle; each of the other nine waits for it.
	if m := run(burst); m.HandOffs() != 9 || m.HandOff() <= 0 {
		t.Fatalf("burst: %d hand-offs (mean %s), want 9", m.HandOffs(), m.HandOff())
	}
}
