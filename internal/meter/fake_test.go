package meter

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/testutil"
)

// fakeGrid is a scripted Nomad: allocations whose task states change when the test says
// so, at the time of a clock the test moves, with an event log the meter can follow from
// any index. It keeps ten events per task, as Nomad's client does.
type fakeGrid struct {
	mu      sync.Mutex
	cond    *sync.Cond
	now     time.Time
	index   uint64
	allocs  map[string]*nomadapi.Allocation
	log     []*nomadapi.Events
	barrier map[string]chan struct{}
	seq     int
	// listFails makes the next Allocs calls fail.
	listFails int
	// lagged holds what reads see of an allocation whose changes are published but not
	// yet committed (nil: it did not exist), with the index it was at; lagReads starts
	// the lag, commitReads ends it. laggedReads counts reads that waited on it.
	lagged      map[string]laggedAlloc
	laggedReads int
}

type laggedAlloc struct {
	alloc *nomadapi.Allocation
	index uint64
}

var _ Nomad = (*fakeGrid)(nil)

func newFakeGrid(start time.Time) *fakeGrid {
	g := &fakeGrid{now: start, index: 100, allocs: map[string]*nomadapi.Allocation{}, barrier: map[string]chan struct{}{},
		lagged: map[string]laggedAlloc{}}
	g.cond = sync.NewCond(&g.mu)
	return g
}

func (g *fakeGrid) Allocs(ctx context.Context) ([]*nomadapi.AllocationListStub, uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.listFails > 0 {
		g.listFails--
		return nil, 0, fmt.Errorf("nomad unavailable")
	}
	var out []*nomadapi.AllocationListStub
	for _, a := range g.allocs {
		c := copyAlloc(a)
		out = append(out, &nomadapi.AllocationListStub{
			ID: c.ID, Namespace: c.Namespace, NodeID: c.NodeID, JobID: c.JobID, TaskGroup: c.TaskGroup,
			ClientStatus: c.ClientStatus, TaskStates: c.TaskStates, ModifyIndex: c.ModifyIndex,
			ModifyTime: c.ModifyTime,
		})
	}
	return out, g.index, nil
}

// Alloc answers as Nomad's blocking query does: a read of an allocation whose change is
// published but not committed waits for the commit when it asks for the change's index,
// and sees the allocation as it was when it does not.
func (g *fakeGrid) Alloc(ctx context.Context, id string, minIndex uint64) (*nomadapi.Allocation, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ch, ok := g.barrier[id]; ok {
		close(ch)
		delete(g.barrier, id)
		return nil, nil
	}
	if l, ok := g.lagged[id]; ok && minIndex > l.index {
		g.laggedReads++
		stop := context.AfterFunc(ctx, func() {
			g.mu.Lock()
			g.cond.Broadcast()
			g.mu.Unlock()
		})
		defer stop()
		for _, still := g.lagged[id]; still && ctx.Err() == nil; _, still = g.lagged[id] {
			g.cond.Wait()
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	if l, ok := g.lagged[id]; ok {
		if l.alloc == nil {
			return nil, nil
		}
		return copyAlloc(l.alloc), nil
	}
	a, ok := g.allocs[id]
	if !ok {
		return nil, nil
	}
	return copyAlloc(a), nil
}

func (g *fakeGrid) Stream(ctx context.Context, index uint64) (<-chan *nomadapi.Events, error) {
	ch := make(chan *nomadapi.Events)
	go func() {
		defer close(ch)
		stop := context.AfterFunc(ctx, func() {
			g.mu.Lock()
			g.cond.Broadcast()
			g.mu.Unlock()
		})
		defer stop()
		next := 0
		for {
			g.mu.Lock()
			for next < len(g.log) && g.log[next].Index < index {
				next++
			}
			for next >= len(g.log) && ctx.Err() == nil {
				g.cond.Wait()
			}
			if ctx.Err() != nil {
				g.mu.Unlock()
				return
			}
			evs := g.log[next]
			next++
			g.mu.Unlock()
			select {
			case ch <- evs:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

func copyAlloc(a *nomadapi.Allocation) *nomadapi.Allocation {
	c := *a
	c.TaskStates = map[string]*nomadapi.TaskState{}
	for k, ts := range a.TaskStates {
		t := *ts
		t.Events = append([]*nomadapi.TaskEvent(nil), ts.Events...)
		c.TaskStates[k] = &t
	}
	return &c
}

// emit records a change of alloc id in the event log; the caller holds g.mu.
func (g *fakeGrid) emit(id string) {
	g.index++
	if a, ok := g.allocs[id]; ok {
		a.ModifyIndex = g.index
		a.ModifyTime = g.now.UnixNano()
	}
	g.log = append(g.log, &nomadapi.Events{Index: g.index, Events: []nomadapi.Event{{
		Topic: nomadapi.TopicAllocation, Type: "AllocationUpdated", Key: id, Index: g.index,
		Payload: map[string]any{"Allocation": map[string]any{"ID": id, "ModifyIndex": float64(g.index)}},
	}}})
	g.cond.Broadcast()
}

func (g *fakeGrid) advance(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.now = g.now.Add(d)
}

func (g *fakeGrid) clock() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.now
}

// job builds a job with the dyno contract's meta.
func fakeJob(app, jobID, group, process, typ string) *nomadapi.Job {
	meta := map[string]string{MetaApp: app}
	if process != "" {
		meta[MetaProcess] = process
	}
	return &nomadapi.Job{ID: &jobID, Type: &typ, Meta: meta,
		TaskGroups: []*nomadapi.TaskGroup{{Name: &group}}}
}

// place starts a dyno now: an allocation whose task "main" is received and started.
func (g *fakeGrid) place(id string, job *nomadapi.Job, group, node string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.allocs[id] = &nomadapi.Allocation{ID: id, Namespace: "default", JobID: *job.ID, Job: job,
		TaskGroup: group, NodeID: node, ClientStatus: nomadapi.AllocClientStatusRunning,
		TaskStates: map[string]*nomadapi.TaskState{"main": {State: "pending"}}}
	g.event(id, "main", nomadapi.TaskReceived, "pending")
	g.event(id, "main", nomadapi.TaskStarted, "running")
	g.emit(id)
}

// event appends a task event at the current time; the caller holds g.mu.
func (g *fakeGrid) event(id, task, typ, state string) {
	ts := g.allocs[id].TaskStates[task]
	ts.Events = append(ts.Events, &nomadapi.TaskEvent{Type: typ, Time: g.now.UnixNano()})
	if len(ts.Events) > 10 {
		ts.Events = ts.Events[len(ts.Events)-10:]
	}
	switch {
	case typ == nomadapi.TaskStarted:
		// Nomad sets StartedAt a moment after it creates the Started event.
		ts.StartedAt = g.now.Add(time.Microsecond)
	case state == "dead":
		ts.FinishedAt = g.now
	}
	if typ == nomadapi.TaskRestarting {
		ts.Restarts++
		ts.LastRestart = g.now
	}
	ts.State = state
}

// crash makes the dyno's process exit now; Nomad will restart it.
func (g *fakeGrid) crash(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	// The client reports the exit before it decides to restart: in between, the
	// task's state still says running.
	g.event(id, "main", nomadapi.TaskTerminated, "running")
	g.emit(id)
	g.event(id, "main", nomadapi.TaskRestarting, "pending")
	g.emit(id)
}

// restart starts a crashed dyno's process again now.
func (g *fakeGrid) restart(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.event(id, "main", nomadapi.TaskStarted, "running")
	g.emit(id)
}

// stop kills the dyno now (scale down, app deleted) or, for a one-off dyno, lets it
// finish.
func (g *fakeGrid) stop(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.allocs[id]
	a.DesiredStatus = "stop"
	g.event(id, "main", nomadapi.TaskKilling, "running")
	g.event(id, "main", nomadapi.TaskTerminated, "running")
	g.event(id, "main", nomadapi.TaskKilled, "dead")
	a.ClientStatus = nomadapi.AllocClientStatusComplete
	g.emit(id)
}

// lose marks the dyno's node lost now: the servers mark the allocation lost and its
// task states stay as the dead client last reported them.
func (g *fakeGrid) lose(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.allocs[id].ClientStatus = nomadapi.AllocClientStatusLost
	g.emit(id)
}

// lagReads makes reads of allocation id see it as it is now until commitReads, while
// its changes are published to the event stream, as Nomad does between publishing a
// change and committing it.
func (g *fakeGrid) lagReads(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := laggedAlloc{index: g.index}
	if a, ok := g.allocs[id]; ok {
		l.alloc, l.index = copyAlloc(a), a.ModifyIndex
	}
	g.lagged[id] = l
}

// commitReads ends lagReads: reads see the allocation's changes.
func (g *fakeGrid) commitReads(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.lagged, id)
	g.cond.Broadcast()
}

// gc forgets an allocation, as Nomad's garbage collector does.
func (g *fakeGrid) gc(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.allocs, id)
}

// sync waits until the meter has handled every event emitted so far: it emits an event
// for an allocation that exists only as a barrier, and waits for the meter to read it.
func (g *fakeGrid) sync(t testing.TB) {
	t.Helper()
	g.mu.Lock()
	g.seq++
	id := fmt.Sprintf("barrier-%d", g.seq)
	ch := make(chan struct{})
	g.barrier[id] = ch
	g.emit(id)
	g.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("meter did not reach event barrier %s", id)
	}
}

// freeLock is a Locker that is always free: one meter runs at a time in these tests.
type freeLock struct{}

func (freeLock) Acquire(context.Context) (<-chan struct{}, func(), error) {
	return make(chan struct{}), func() {}, nil
}

// runningMeter is a meter started on a fake grid, stopped by stop or at the test's end.
type runningMeter struct {
	m      *Meter
	cancel context.CancelFunc
	done   chan struct{}
}

func startMeter(t testing.TB, g *fakeGrid, store Store) *runningMeter {
	t.Helper()
	m, err := New(Config{Nomad: g, Store: store, Locker: freeLock{}, Now: g.clock,
		CheckpointInterval: 5 * time.Millisecond, RetryInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rm := &runningMeter{m: m, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rm.done)
		_ = m.Run(ctx)
	}()
	t.Cleanup(rm.stop)
	g.sync(t)
	return rm
}

func (rm *runningMeter) stop() {
	rm.cancel()
	<-rm.done
}

// waitCheckpoint waits until the meter has published a checkpoint at the grid's time.
func waitCheckpoint(t testing.TB, rm *runningMeter, g *fakeGrid) {
	t.Helper()
	want := g.clock()
	testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("the meter's checkpoint at %s", want), func() error {
		if c, _ := rm.m.Synced(); c.Before(want) {
			return fmt.Errorf("checkpoint at %s", c)
		}
		return nil
	})
}
