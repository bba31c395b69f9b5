package drain

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/logstream"
	"github.com/dynogrid/dynogrid/internal/tenancy"
	"github.com/dynogrid/dynogrid/router/logapi"
)

// Shipper follows the apps that have drains and sends their lines to each: the output of
// each of their dynos (Nomad's allocation logs, followed) and their router lines (each
// router's logs endpoint, read with the app's router log key).
type Shipper struct {
	Nomad   *nomadapi.Client
	Routers []string
	Sender  SenderConfig
	Logger  hclog.Logger
	// Interval is how often the shipper looks for apps, drains and dynos, and writes
	// each app's drain status.
	Interval time.Duration

	mu   sync.Mutex
	apps map[string]*appShipper
}

// Run ships until ctx ends.
func (s *Shipper) Run(ctx context.Context) {
	s.apps = map[string]*appShipper{}
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	for {
		if err := s.refresh(ctx); err != nil && ctx.Err() == nil {
			s.Logger.Warn("failed to list the apps with drains", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refresh starts shipping for apps that got drains and stops it for those that have none.
func (s *Shipper) refresh(ctx context.Context) error {
	vars, _, err := s.Nomad.Variables().PrefixList(Path, (&nomadapi.QueryOptions{Namespace: "*"}).WithContext(ctx))
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, v := range vars {
		if v.Path == Path {
			want[v.Namespace] = true // an app's namespace is named after it
		}
	}
	s.mu.Lock()
	for app, a := range s.apps {
		if !want[app] {
			a.stop()
			delete(s.apps, app)
			s.Logger.Info("app has no drains now", "app", app)
		}
	}
	for app := range want {
		if s.apps[app] == nil {
			s.apps[app] = s.startApp(ctx, app)
			s.Logger.Info("shipping the lines of an app", "app", app)
		}
	}
	apps := maps.Clone(s.apps)
	s.mu.Unlock()
	for _, a := range apps {
		a.refresh()
	}
	return nil
}

// Senders returns the senders of every app, for metrics.
func (s *Shipper) Senders() map[string][]*Sender {
	s.mu.Lock()
	apps := maps.Clone(s.apps)
	s.mu.Unlock()
	out := map[string][]*Sender{}
	for app, a := range apps {
		a.mu.Lock()
		for _, r := range a.senders {
			out[app] = append(out[app], r.s)
		}
		a.mu.Unlock()
	}
	return out
}

// appShipper ships one app's lines.
type appShipper struct {
	s      *Shipper
	app    string
	ctx    context.Context
	cancel context.CancelFunc
	log    hclog.Logger

	mu      sync.Mutex
	senders map[string]*runningSender
	allocs  map[string]bool // followed, or done: an allocation is followed once
	resume  map[string]bool // its follow failed: followed again, from its end
	started bool
	// sinceIndex is Nomad's Raft index when the shipper first listed the app's dynos: a
	// dyno created later that has ended when the shipper first sees it (a one-off dyno,
	// a crash) is read once, whole. An index, not a time: no two clocks to compare.
	sinceIndex uint64
	written    map[string]Status
	wroteAt    time.Time
}

type runningSender struct {
	s      *Sender
	cancel context.CancelFunc
}

func (s *Shipper) startApp(ctx context.Context, app string) *appShipper {
	ctx, cancel := context.WithCancel(ctx)
	a := &appShipper{s: s, app: app, ctx: ctx, cancel: cancel, log: s.Logger.With("app", app),
		senders: map[string]*runningSender{}, allocs: map[string]bool{}, resume: map[string]bool{}}
	for _, base := range s.Routers {
		go a.followRouter(base)
	}
	return a
}

func (a *appShipper) stop() {
	a.cancel()
	// Its status goes with its drains; a failure leaves a stale status, harmless.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = WriteStatus(ctx, a.s.Nomad, a.app, nil)
}

// refresh matches the senders to the app's drains, follows new dynos and writes the
// drains' status.
func (a *appShipper) refresh() {
	drains, err := List(a.ctx, a.s.Nomad, a.app)
	if err != nil {
		a.log.Warn("failed to read the app's drains", "error", err)
		return
	}
	a.syncSenders(drains)
	if err := a.followDynos(); err != nil && a.ctx.Err() == nil {
		a.log.Warn("failed to list the app's dynos", "error", err)
	}
	a.writeStatus()
}

// syncSenders runs a sender for each of the app's drains. The drains' Variable is the
// app's to write, with or without `dyno drains:add`: the shipper takes at most MaxDrains
// of them (the first by URL), each URL once, and only tokens drains:add could have made.
func (a *appShipper) syncSenders(drains []Drain) {
	a.mu.Lock()
	defer a.mu.Unlock()
	keep := map[string]bool{}
	urls := map[string]bool{}
	if len(drains) > MaxDrains {
		a.log.Warn("skipping drains beyond the most an app may have", "drains", len(drains), "max", MaxDrains)
		drains = drains[:MaxDrains]
	}
	for _, d := range drains {
		if !tokenRE.MatchString(d.Token) || urls[d.URL] {
			a.log.Warn("skipping a drain of a bad token, or of a URL drained already", "drain", field(d.Token))
			continue
		}
		urls[d.URL] = true
		if r := a.senders[d.Token]; r != nil && r.s.Drain.URL == d.URL {
			keep[d.Token] = true
			continue
		}
		snd, err := NewSender(d, a.s.Sender)
		if err != nil {
			a.log.Warn("skipping a bad drain", "drain", d.Token, "error", err)
			continue
		}
		if r := a.senders[d.Token]; r != nil {
			r.cancel()
		}
		keep[d.Token] = true
		ctx, cancel := context.WithCancel(a.ctx)
		go snd.Run(ctx)
		a.senders[d.Token] = &runningSender{s: snd, cancel: cancel}
	}
	for token, r := range a.senders {
		if !keep[token] {
			r.cancel()
			delete(a.senders, token)
		}
	}
}

// send hands a line to each of the app's drains; it never waits.
func (a *appShipper) send(m Message) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.senders {
		r.s.Send(m)
	}
}

// followDynos follows each running dyno of the app not followed yet: those running when
// the app got its drains from their end, those started later from their beginning. A
// dyno made after the app got its drains that ended before the shipper saw it running
// (a one-off dyno of a few seconds, one that crashed at once) is read whole, once.
func (a *appShipper) followDynos() error {
	allocs, meta, err := a.s.Nomad.Allocations().List((&nomadapi.QueryOptions{Namespace: tenancy.Namespace(a.app)}).WithContext(a.ctx))
	if err != nil {
		return err
	}
	a.mu.Lock()
	from := 0
	if !a.started {
		from = -1
		a.started = true
		a.sinceIndex = meta.LastIndex
	}
	listed := map[string]bool{}
	type follow struct {
		stub   *nomadapi.AllocationListStub
		from   int
		follow bool
	}
	var start []follow
	for _, al := range allocs {
		listed[al.ID] = true
		if a.allocs[al.ID] {
			continue
		}
		running := al.DesiredStatus == nomadapi.AllocDesiredStatusRun && al.ClientStatus == nomadapi.AllocClientStatusRunning
		ended := (al.ClientStatus == nomadapi.AllocClientStatusComplete || al.ClientStatus == nomadapi.AllocClientStatusFailed) &&
			!a.resume[al.ID] && al.CreateIndex > a.sinceIndex
		if !running && !ended {
			continue
		}
		a.allocs[al.ID] = true
		f := follow{al, from, running}
		if ended {
			f.from = 0
		}
		if a.resume[al.ID] {
			f.from = -1 // what came meanwhile is lost; what was shipped is not sent again
		}
		start = append(start, f)
	}
	for id := range a.allocs {
		if !listed[id] {
			delete(a.allocs, id) // gone from Nomad: it will not come back
			delete(a.resume, id)
		}
	}
	a.mu.Unlock()
	for _, f := range start {
		go a.followDyno(f.stub, f.from, f.follow)
	}
	return nil
}

// followDyno ships a dyno's stdout and stderr: until it ends when follow, else what it
// wrote. When following fails otherwise, the dyno is followed again at the next
// refresh, from its end.
func (a *appShipper) followDyno(stub *nomadapi.AllocationListStub, from int, follow bool) {
	alloc, _, err := a.s.Nomad.Allocations().Info(stub.ID, (&nomadapi.QueryOptions{Namespace: stub.Namespace}).WithContext(a.ctx))
	if err != nil {
		a.log.Warn("failed to read a dyno", "alloc", stub.ID, "error", err)
		a.forget(stub.ID, from)
		return
	}
	name := procName(a.app, alloc)
	out := &logstream.LineWriter{Emit: func(prefix, text string) {
		a.send(Message{Time: time.Now(), Proc: prefix, Text: text})
	}}
	ctx, cancel := context.WithCancel(a.ctx)
	defer cancel()
	var wg sync.WaitGroup
	var failed atomic.Bool
	for _, stream := range []string{"stdout", "stderr"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := logstream.FollowAlloc(ctx, a.s.Nomad, alloc, stub.TaskGroup, name, stream, follow, from, out); err != nil && ctx.Err() == nil {
				a.log.Warn("stopped following a dyno", "dyno", name, "stream", stream, "error", err)
				failed.Store(true)
				cancel() // both streams are followed again together
			}
		}()
	}
	wg.Wait()
	if failed.Load() {
		a.forget(stub.ID, -1)
	}
}

// forget lets the next refresh follow the allocation again; from < 0 from its end.
func (a *appShipper) forget(allocID string, from int) {
	a.mu.Lock()
	delete(a.allocs, allocID)
	if from < 0 {
		a.resume[allocID] = true
	}
	a.mu.Unlock()
}

// procName is a dyno's name in its lines, as `dyno logs` names it: web.1 for the app's
// own dynos, release.v<N> for a release phase, run.<id> for a one-off dyno (whose job
// is <app>-run-<id>).
func procName(app string, alloc *nomadapi.Allocation) string {
	if alloc.Job != nil && alloc.TaskGroup == appspec.ReleaseProcess && alloc.Job.Meta[deploy.MetaReleasePhase] != "" {
		return deploy.ReleasePhaseDyno(alloc.Job.Meta[deploy.MetaReleasePhase])
	}
	if id, ok := strings.CutPrefix(alloc.JobID, app+"-run-"); ok {
		return "run." + id
	}
	return logstream.DynoName(alloc.Name)
}

// followRouter sends the app's router lines from one router, from now on, until the app
// stops, trying again with backoff when the router or the key fails.
func (a *appShipper) followRouter(base string) {
	backoff := a.s.Sender.MinBackoff
	wait := func() bool {
		select {
		case <-a.ctx.Done():
			return false
		case <-time.After(jitter(backoff)):
		}
		backoff = min(backoff*2, a.s.Sender.MaxBackoff)
		return true
	}
	for a.ctx.Err() == nil {
		key, err := a.routerKey()
		if err != nil {
			a.log.Warn("no router log key yet", "error", err)
			if !wait() {
				return
			}
			continue
		}
		rr := logstream.NewRouterReader(base, a.app, key)
		for a.ctx.Err() == nil {
			started := rr.Started()
			wait := time.Duration(0)
			if started {
				wait = logstream.Poll
			}
			lines, err := rr.Read(a.ctx, 1, wait)
			if err != nil {
				break
			}
			backoff = a.s.Sender.MinBackoff
			if !started {
				continue // the first read only finds where now is
			}
			for _, l := range lines {
				a.send(Message{Time: l.Time, Proc: "router", Text: l.Line})
			}
		}
		if a.ctx.Err() == nil && !wait() {
			return
		}
	}
}

func (a *appShipper) routerKey() (string, error) {
	v, err := read(a.ctx, a.s.Nomad, a.app, logapi.KeyPath)
	if err != nil {
		return "", err
	}
	if v == nil || len(v.Items[logapi.KeyItem]) < logapi.MinKeyLen {
		return "", errors.New("the app has no router log key (dyno drains:add makes one)")
	}
	return v.Items[logapi.KeyItem], nil
}

// writeStatus writes the drains' status into the app's namespace when it changed, and
// at least every minute.
func (a *appShipper) writeStatus() {
	a.mu.Lock()
	st := map[string]Status{}
	for token, r := range a.senders {
		st[token] = r.s.Status()
	}
	same := maps.Equal(st, a.written) && time.Since(a.wroteAt) < time.Minute
	a.mu.Unlock()
	if same {
		return
	}
	now := time.Now().UTC()
	stamped := map[string]Status{}
	for token, s := range st {
		s.Updated = now
		stamped[token] = s
	}
	if err := WriteStatus(a.ctx, a.s.Nomad, a.app, stamped); err != nil {
		if a.ctx.Err() == nil {
			a.log.Warn("failed to write the drains' status", "error", err)
		}
		return
	}
	a.mu.Lock()
	a.written, a.wroteAt = st, time.Now()
	a.mu.Unlock()
}
