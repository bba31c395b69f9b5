package meter

import (
	"context"
	"fmt"
	"math/rand"
	"testing"
	"time"
)

// TestMeterMatchesBruteForce drives the meter through random histories (dynos placed,
// crashed and restarted, stopped, lost with their host, one-off dynos, and the meter
// itself stopped and restarted at random) and checks the priced ledger against the brute
// force second-by-second computation over the intervals the script knows ran.
func TestMeterMatchesBruteForce(t *testing.T) {
	t.Parallel()
	for seed := int64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			checkRandomHistory(t, seed)
		})
	}
}

type truthDyno struct {
	app, process string
	running      bool
	since        time.Time
	crashes      int
	done         bool
}

func checkRandomHistory(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	g := newFakeGrid(t0)
	store := NewMemStore()
	rm := startMeter(t, g, store)
	meterUp := true
	dynos := map[string]*truthDyno{}
	var order []string
	var truth []Interval
	end := func(id string) {
		d := dynos[id]
		if d.running {
			truth = append(truth, Interval{App: d.app, Process: d.process, Dyno: id, Start: d.since, End: g.clock()})
			d.running = false
		}
	}
	pick := func(ok func(*truthDyno) bool) string {
		var ids []string
		for _, id := range order {
			if ok(dynos[id]) {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			return ""
		}
		return ids[rng.Intn(len(ids))]
	}
	for step := 0; step < 60; step++ {
		g.advance(time.Duration(rng.Int63n(120e9)))
		switch op := rng.Intn(10); {
		case op < 3:
			id := fmt.Sprintf("alloc-%02d", len(order))
			app := []string{"alpha", "beta"}[rng.Intn(2)]
			proc := []string{"web", "worker", "run"}[rng.Intn(3)]
			g.place(id, fakeJob(app, app, proc, proc, "service"), proc, fmt.Sprint("host", rng.Intn(3)))
			dynos[id] = &truthDyno{app: app, process: proc, running: true, since: g.clock()}
			order = append(order, id)
		case op < 5:
			// At most two crashes per dyno, so its start and end events stay within
			// the ten events Nomad keeps even while the meter is down.
			if id := pick(func(d *truthDyno) bool { return d.running && d.crashes < 2 }); id != "" {
				g.crash(id)
				end(id)
				dynos[id].crashes++
			}
		case op < 6:
			if id := pick(func(d *truthDyno) bool { return !d.done && !d.running }); id != "" {
				g.restart(id)
				dynos[id].running, dynos[id].since = true, g.clock()
			}
		case op < 8:
			if id := pick(func(d *truthDyno) bool { return !d.done }); id != "" {
				g.stop(id)
				end(id)
				dynos[id].done = true
			}
		case op < 9:
			if id := pick(func(d *truthDyno) bool { return !d.done }); id != "" {
				g.lose(id)
				end(id)
				dynos[id].done = true
			}
		default:
			if meterUp {
				g.sync(t)
				rm.stop()
			} else {
				rm = startMeter(t, g, store)
			}
			meterUp = !meterUp
		}
	}
	if !meterUp {
		startMeter(t, g, store) // t.Cleanup stops it
	}
	g.sync(t)
	until := g.clock().Add(time.Duration(rng.Int63n(60e9)))
	for _, id := range order {
		if d := dynos[id]; d.running {
			truth = append(truth, Interval{App: d.app, Process: d.process, Dyno: id, Start: d.since})
		}
	}
	for _, since := range []time.Time{{}, at(rng.Intn(1800))} {
		rep, err := Usage(context.Background(), store, "", since, until)
		if err != nil {
			t.Fatal(err)
		}
		lo := int64(-1 << 62)
		if !since.IsZero() {
			lo = since.Unix()
		}
		checkReport(t, rep, bruteForce(truth, lo, until.Unix()))
		if t.Failed() {
			recs, _ := store.Runs(context.Background(), "")
			for _, r := range recs {
				t.Logf("ledger: %s %s %s start %s end %v (%s)", r.App, r.Process, r.Alloc, r.Start.Sub(t0), r.End, r.EndReason)
			}
			for _, iv := range truth {
				t.Logf("truth: %s %s %s %s..%v", iv.App, iv.Process, iv.Dyno, iv.Start.Sub(t0), iv.End)
			}
			t.FailNow()
		}
	}
}
