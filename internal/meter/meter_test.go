package meter

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/internal/testutil"
)

// TestMeterScriptedHistory runs a meter against a scripted grid through scale up, a
// crash, a meter restart during which a dyno stops and a one-off dyno runs, a host lost
// and its dyno rescheduled, the app deleted and recreated, and checks the bill to the
// micro-dollar.
func TestMeterScriptedHistory(t *testing.T) {
	t.Parallel()
	g := newFakeGrid(t0)
	store := NewMemStore()
	web := fakeJob("demo", "demo", "web", "web", "service")
	run := fakeJob("demo", "demo-run-1", "run", "run", "batch")
	other := fakeJob("", "dyno-meter", "meter", "", "service") // not a dyno

	rm := startMeter(t, g, store)
	g.place("a1", web, "web", "host1")
	g.place("a2", web, "web", "host2")
	g.place("meter", other, "meter", "host1")
	g.advance(600 * time.Second)
	g.place("a3", web, "web", "host1") // scale to 4
	g.place("a4", web, "web", "host2")
	g.advance(600 * time.Second)
	g.crash("a4") // 1200
	g.advance(30 * time.Second)
	g.restart("a4") // 1230
	g.advance(570 * time.Second)
	g.sync(t)
	rm.stop() // the meter is down from 1800 to 2400

	g.advance(200 * time.Second)
	g.stop("a3") // 2000: scale to 3
	g.advance(100 * time.Second)
	g.place("r1", run, "run", "host1") // 2100: dyno run
	g.advance(60 * time.Second)
	g.stop("r1") // 2160
	g.advance(240 * time.Second)

	startMeter(t, g, store) // 2400; t.Cleanup stops it
	g.advance(300 * time.Second)
	g.lose("a2") // 2700: host2 lost
	g.advance(30 * time.Second)
	g.place("a5", web, "web", "host3") // 2730: rescheduled
	g.advance(270 * time.Second)
	for _, id := range []string{"a1", "a4", "a5"} {
		g.stop(id) // 3000: app deleted
	}
	g.advance(300 * time.Second)
	g.place("b1", web, "web", "host1") // 3300: app recreated
	g.place("b2", web, "web", "host2")
	g.advance(300 * time.Second)
	g.sync(t)

	rep, err := Usage(context.Background(), store, "demo", time.Time{}, at(3600))
	if err != nil {
		t.Fatal(err)
	}
	// web: a1 3000 + a2 2700 + a3 1400 + a4 (600+1770) + a5 270 + b1 300 + b2 300 = 10340
	// dyno-seconds; free 3000 (a1) + 300 (b1); billed 7040 = $0.0977777...
	// run: 60 s billed = $0.000833...
	checkReport(t, rep, map[string]map[string]want{"demo": {
		"web": {7, 10340, 3300, 7040, 97778},
		"run": {1, 60, 0, 60, 833},
	}})
	if got := rep.Total.Exact(); got != "71/720" {
		t.Errorf("total = %s dollars, want 71/720 (7100 billed seconds at $0.05/h)", got)
	}
	if got := rep.Total.String(); got != "$0.10" {
		t.Errorf("total = %s, want $0.10", got)
	}

	recs, _ := store.Runs(context.Background(), "")
	reasons := map[string]string{}
	for _, r := range recs {
		if r.App != "demo" {
			t.Errorf("record of app %q: only dynos are metered: %+v", r.App, r)
		}
		if r.End != nil {
			reasons[r.Alloc+"@"+r.Start.Sub(t0).String()] = r.EndReason
		}
	}
	for k, want := range map[string]string{
		"a4@10m0s": "Terminated", "a3@10m0s": "Terminated", "r1@35m0s": "Terminated",
		"a2@0s": ReasonAllocLost, "a1@0s": "Terminated",
	} {
		if reasons[k] != want {
			t.Errorf("run %s ended by %q, want %q", k, reasons[k], want)
		}
	}
	if len(recs) != 9 {
		t.Errorf("ledger has %d records, want 9 (one per run): %+v", len(recs), recs)
	}
}

// TestMeterIsIdempotent replays the same history through several meters and checks
// that the ledger holds each run once and no closed record is rewritten.
func TestMeterIsIdempotent(t *testing.T) {
	t.Parallel()
	g := newFakeGrid(t0)
	store := NewMemStore()
	web := fakeJob("demo", "demo", "web", "", "service")
	g.place("a1", web, "web", "h1")
	g.place("a2", web, "web", "h1")
	g.advance(time.Hour)
	g.stop("a2")
	for i := 0; i < 3; i++ {
		rm := startMeter(t, g, store)
		g.sync(t)
		rm.stop()
	}
	recs, _ := store.Runs(context.Background(), "")
	if len(recs) != 2 {
		t.Fatalf("ledger has %d records, want 2: %+v", len(recs), recs)
	}
	// One write for a1 (open) and one for a2 (already closed when first seen).
	if w := store.Writes(); w != 2 {
		t.Errorf("store saw %d record writes over three meter runs, want 2", w)
	}
	// Process type defaults to the task group when no dyno.process meta is set.
	if recs[0].Process != "web" {
		t.Errorf("process = %q, want the group name web", recs[0].Process)
	}
}

// TestMeterClosesGarbageCollectedAllocs covers an allocation that stopped and was
// garbage-collected while no meter ran: its open run is closed at the last checkpoint.
func TestMeterClosesGarbageCollectedAllocs(t *testing.T) {
	t.Parallel()
	g := newFakeGrid(t0)
	store := NewMemStore()
	web := fakeJob("demo", "demo", "web", "", "service")
	rm := startMeter(t, g, store)
	g.place("a1", web, "web", "h1")
	g.place("a2", web, "web", "h1")
	g.advance(1000 * time.Second)
	g.sync(t)
	waitCheckpoint(t, rm, g) // checkpoint at 1000
	rm.stop()
	g.advance(500 * time.Second)
	g.stop("a2")
	g.gc("a2")
	g.advance(500 * time.Second)
	startMeter(t, g, store)

	rep, err := Usage(context.Background(), store, "", time.Time{}, at(2000))
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, map[string]map[string]want{"demo": {"web": {2, 3000, 2000, 1000, 13889}}})
	recs, _ := store.Runs(context.Background(), "demo")
	for _, r := range recs {
		if r.Alloc == "a2" && (r.EndReason != ReasonAllocGone || !r.End.Equal(at(1000))) {
			t.Errorf("a2 closed at %v by %q, want %s by %q", r.End, r.EndReason, at(1000), ReasonAllocGone)
		}
	}
	meta, _ := store.Meta(context.Background())
	if meta.Price != DefaultPrice || meta.Checkpoint.Before(at(2000)) {
		t.Errorf("meta = %+v, want the default price and a checkpoint at %s", meta, at(2000))
	}
}

// TestMeterReadsPastTheEvent covers a one-off dyno that starts and finishes between two
// events, each read before Nomad committed it: Nomad publishes a change before reads see
// it, so a meter that read at once would see no run and record none.
func TestMeterReadsPastTheEvent(t *testing.T) {
	t.Parallel()
	g := newFakeGrid(t0)
	store := NewMemStore()
	startMeter(t, g, store)
	g.lagReads("r1")
	g.place("r1", fakeJob("demo", "demo-run-1", "run", "run", "batch"), "run", "h1")
	g.advance(3 * time.Second)
	g.stop("r1")
	testutil.WaitFor(t, 10*time.Second, "the meter's read of r1 to wait for the commit", func() error {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.laggedReads == 0 {
			return fmt.Errorf("no read waited")
		}
		return nil
	})
	g.commitReads("r1")
	g.sync(t)
	recs, _ := store.Runs(context.Background(), "demo")
	if len(recs) != 1 || recs[0].Process != "run" || !recs[0].Start.Equal(t0) || !recs[0].End.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("ledger = %+v, want one closed run of r1 from %s for 3s", recs, t0)
	}
}

// TestMeterRetriesWhenNomadFails checks that a failing allocation list is retried.
func TestMeterRetriesWhenNomadFails(t *testing.T) {
	t.Parallel()
	g := newFakeGrid(t0)
	g.listFails = 3
	store := NewMemStore()
	g.place("a1", fakeJob("demo", "demo", "web", "", "service"), "web", "h1")
	startMeter(t, g, store)
	recs, _ := store.Runs(context.Background(), "demo")
	if len(recs) != 1 || !recs[0].Open() {
		t.Fatalf("ledger = %+v, want one open run", recs)
	}
}

func TestUsageRejectsEmptyWindow(t *testing.T) {
	t.Parallel()
	_, err := Usage(context.Background(), NewMemStore(), "", at(10), at(10))
	if err == nil || !strings.Contains(err.Error(), "is not before until") {
		t.Fatalf("error = %v, want one saying since is not before until", err)
	}
}

func TestUsageCountsOpenRunsUpToNow(t *testing.T) {
	t.Parallel()
	store := NewMemStore()
	a := AllocState{ID: "a1", JobID: "demo", TaskGroup: "web", App: "demo", Process: "web"}
	b := a
	b.ID = "b1"
	if err := store.PutRuns(context.Background(), []Record{a.record("main", at(0)), b.record("main", at(0))}); err != nil {
		t.Fatal(err)
	}
	rep, err := usageAt(context.Background(), store, "demo", time.Time{}, at(7200), at(3600))
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, map[string]map[string]want{"demo": {"web": {2, 7200, 3600, 3600, 50000}}})
	if rep.Until != at(7200) {
		t.Errorf("report until %s, want the window's end %s", rep.Until, at(7200))
	}
}
