package router

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func benchApp(b *testing.B, n int) *app {
	r, err := New(Config{Listen: "127.0.0.1:0", Logger: hclog.NewNullLogger()})
	if err != nil {
		b.Fatal(err)
	}
	insts := make([]Instance, n)
	for i := range insts {
		insts[i] = Instance{ID: fmt.Sprint("d", i), Dyno: fmt.Sprint("web.", i+1), Address: "127.0.0.1", Port: 10000 + i%50000}
	}
	r.SetApp("bench", insts)
	a := r.appRef("bench")
	// Half the dynos busy, as under load.
	for i := 0; i < n/2; i++ {
		if _, _, qe := a.acquire(context.Background(), false, hold{}, time.Second, nil, nil); qe != nil {
			b.Fatal(qe.code.Name)
		}
	}
	return a
}

// dispatchLoop takes and gives back a dyno iters times: the dispatch path (lookup of an
// idle dyno and the settle of its lease, which would hand it to the oldest waiter).
func dispatchLoop(b *testing.B, a *app, iters int) {
	ctx := context.Background()
	for i := 0; i < iters; i++ {
		l, _, qe := a.acquire(ctx, false, hold{}, time.Second, nil, nil)
		if qe != nil {
			b.Fatal(qe.code.Name)
		}
		l.settle(ended)
	}
}

func BenchmarkDispatch(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprintf("dynos=%d", n), func(b *testing.B) {
			a := benchApp(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			// At least 200,000 dispatches, also under `-benchtime 1x` (make bench).
			iters := max(b.N, 200000)
			start := time.Now()
			dispatchLoop(b, a, iters)
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(iters), "ns/dispatch")
		})
	}
}

// BenchmarkDispatchFlat compares the dispatch cost with 10 and 10,000 dynos in one run
// and reports the ratio (docs/design.md's target: at most 1.2).
func BenchmarkDispatchFlat(b *testing.B) {
	small, large := benchApp(b, 10), benchApp(b, 10000)
	const iters = 500000
	dispatchLoop(b, small, iters) // warm up both
	dispatchLoop(b, large, iters)
	var ts, tl time.Duration
	for i := 0; i < b.N; i++ {
		for round := 0; round < 3; round++ {
			start := time.Now()
			dispatchLoop(b, small, iters)
			ts += time.Since(start)
			start = time.Now()
			dispatchLoop(b, large, iters)
			tl += time.Since(start)
		}
	}
	n := float64(3 * iters * b.N)
	b.ReportMetric(float64(ts.Nanoseconds())/n, "ns/dispatch-10")
	b.ReportMetric(float64(tl.Nanoseconds())/n, "ns/dispatch-10000")
	b.ReportMetric(float64(tl)/float64(ts), "ratio-10000/10")
}
