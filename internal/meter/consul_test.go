package meter_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/meter"
	consulapi "github.com/hashicorp/consul/api"
)

// TestConsulStoreAndLock checks the ledger in a real Consul: records round-trip under
// their keys, one lock holder at a time, and a meter without the lock cannot write.
func TestConsulStoreAndLock(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t, agentsOnly(t), func(o *devgrid.Options) { o.ConsulOnly = true })
	cc, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.UTC)
	end := t0.Add(time.Hour)
	rec := meter.Record{Version: meter.RecordVersion, App: "demo", Process: "web", Namespace: "default",
		Job: "demo", Group: "web", Alloc: "a1", Task: "web/main", Start: t0, End: &end, EndReason: "Terminated"}

	storeA := meter.NewConsulStore(cc, "test/ledger")
	storeB := meter.NewConsulStore(cc, "test/ledger")
	lockA := &meter.ConsulLock{Client: cc, Store: storeA, Holder: "a", TTL: 10 * time.Second}
	lockB := &meter.ConsulLock{Client: cc, Store: storeB, Holder: "b", TTL: 10 * time.Second}

	lostA, releaseA, err := lockA.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := storeA.PutRuns(ctx, []meter.Record{rec}); err != nil {
		t.Fatalf("holder could not write: %v", err)
	}
	if err := storeA.PutMeta(ctx, meter.Meta{Price: 70000, Checkpoint: end, Holder: "a"}); err != nil {
		t.Fatal(err)
	}
	kv, _, err := cc.KV().Get(fmt.Sprintf("test/ledger/runs/demo/a1/web%%2Fmain/%d", t0.UnixNano()), nil)
	if err != nil || kv == nil {
		t.Fatalf("record not under its documented key: %v %v", kv, err)
	}

	// B waits while A holds the lock.
	bctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	_, _, err = lockB.Acquire(bctx)
	cancel()
	if err == nil {
		t.Fatal("second meter acquired the lock while the first held it")
	}
	// A store fenced by a session that does not hold the lock cannot write.
	storeB.Session = "00000000-0000-0000-0000-000000000000"
	if err := storeB.PutRuns(ctx, []meter.Record{rec}); !errors.Is(err, meter.ErrNotLeader) {
		t.Fatalf("write without the lock: error %v, want ErrNotLeader", err)
	}
	storeB.Session = ""

	releaseA()
	select {
	case <-lostA:
	default:
	}
	bctx, cancel = context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	lostB, releaseB, err := lockB.Acquire(bctx)
	if err != nil {
		t.Fatalf("second meter did not take the lock after release: %v", err)
	}
	defer releaseB()
	if err := storeA.PutRuns(ctx, []meter.Record{rec}); err != nil {
		// storeA has no session after release: unfenced writes are allowed (tools).
		t.Fatalf("unfenced write failed: %v", err)
	}
	if err := storeB.PutRuns(ctx, []meter.Record{rec}); err != nil {
		t.Fatalf("new holder could not write: %v", err)
	}

	got, err := storeB.Runs(ctx, "demo")
	if err != nil || len(got) != 1 || !got[0].Start.Equal(t0) || !got[0].End.Equal(end) || got[0].Task != "web/main" {
		t.Fatalf("runs = %+v, %v; want the one record back", got, err)
	}
	meta, err := storeB.Meta(ctx)
	if err != nil || meta.Price != 70000 || !meta.Checkpoint.Equal(end) {
		t.Fatalf("meta = %+v, %v", meta, err)
	}
	rep, err := meter.Usage(ctx, storeB, "", time.Time{}, end)
	if err != nil || rep.Price != 70000 || rep.DynoSeconds != 3600 {
		t.Fatalf("usage = %+v, %v", rep, err)
	}

	// When B's session ends behind its back (an operator, a partition), B hears that
	// it lost the lock and can no longer write.
	sid := storeB.Session
	if _, err := cc.Session().Destroy(sid, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lostB:
	case <-time.After(20 * time.Second):
		t.Fatal("meter was not told that its session, and so its lock, ended")
	}
	if err := storeB.PutRuns(ctx, []meter.Record{rec}); !errors.Is(err, meter.ErrNotLeader) {
		t.Fatalf("write after the lock was lost: error %v, want ErrNotLeader", err)
	}

	// A corrupt record is an error naming its key, not a silent gap in a bill.
	if _, err := cc.KV().Put(&consulapi.KVPair{Key: "test/ledger/runs/demo/a2/web/1", Value: []byte("{")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := storeB.Runs(ctx, "demo"); err == nil || !strings.Contains(err.Error(), "test/ledger/runs/demo/a2/web/1") {
		t.Fatalf("corrupt record: error %v, want one naming its key", err)
	}
}
