package meter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"
)

// Config configures a Meter.
type Config struct {
	Nomad  Nomad
	Store  Store
	Locker Locker
	// Price is published in the ledger's Meta for reports (default DefaultPrice).
	Price Price
	// Holder names this meter in the ledger's Meta.
	Holder string
	// CheckpointInterval is how often the meter publishes its checkpoint while it
	// follows the event stream (default 10s).
	CheckpointInterval time.Duration
	// RetryInterval is the pause after a failure before the meter tries again
	// (default 2s).
	RetryInterval time.Duration
	Logger        hclog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Meter records every dyno's running time into the ledger. One meter of a grid holds
// the lock and writes; others wait for the lock.
type Meter struct {
	cfg    Config
	logger hclog.Logger

	mu      sync.Mutex
	synced  time.Time // last checkpoint written
	leading bool
}

// New checks the configuration and returns a meter. Run starts it.
func New(cfg Config) (*Meter, error) {
	if cfg.Nomad == nil || cfg.Store == nil || cfg.Locker == nil {
		return nil, errors.New("meter: nomad, store and locker must be set")
	}
	if cfg.Price < 0 {
		return nil, fmt.Errorf("meter: price %s must not be negative", cfg.Price)
	}
	if cfg.Price == 0 {
		cfg.Price = DefaultPrice
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = 10 * time.Second
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Meter{cfg: cfg, logger: cfg.Logger}, nil
}

// Synced returns the last checkpoint this meter wrote and whether it holds the lock.
func (m *Meter) Synced() (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.synced, m.leading
}

// Run meters until ctx ends: it waits for the lock, then reconciles the ledger from
// Nomad's allocations and follows the event stream. When it loses the lock or Nomad or
// the store fails, it lets go and starts over. It returns nil when ctx ends.
func (m *Meter) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		lost, release, err := m.cfg.Locker.Acquire(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			m.logger.Warn("failed to acquire the ledger lock", "error", err)
			m.pause(ctx)
			continue
		}
		m.logger.Info("holding the ledger lock")
		lctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-lost:
				cancel()
			case <-lctx.Done():
			}
		}()
		m.setLeading(true)
		err = m.lead(lctx)
		m.setLeading(false)
		lockLost := lctx.Err() != nil && ctx.Err() == nil
		cancel()
		release()
		if ctx.Err() != nil {
			break
		}
		if lockLost {
			m.logger.Warn("lost the ledger lock")
		} else {
			m.logger.Warn("metering stopped, starting over", "error", err)
		}
		m.pause(ctx)
	}
	return nil
}

func (m *Meter) setLeading(b bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leading = b
}

func (m *Meter) pause(ctx context.Context) {
	t := time.NewTimer(m.cfg.RetryInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// lead runs while this meter holds the lock.
func (m *Meter) lead(ctx context.Context) error {
	rec := NewRecorder(m.cfg.Store, m.logger)
	if err := rec.Load(ctx); err != nil {
		return err
	}
	meta, err := m.cfg.Store.Meta(ctx)
	if err != nil {
		return err
	}
	s := &session{m: m, rec: rec, checkpoint: meta.Checkpoint,
		nonDyno: map[string]bool{}, seenIndex: map[string]uint64{}}
	for {
		index, err := s.reconcile(ctx)
		if err != nil {
			return err
		}
		err = s.follow(ctx, index)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrNotLeader) {
			return err
		}
		m.logger.Warn("event stream interrupted, reconciling", "error", err)
		m.pause(ctx)
	}
}

// session is the state of one term as leader.
type session struct {
	m          *Meter
	rec        *Recorder
	checkpoint time.Time
	// nonDyno remembers allocations that are not dynos; seenIndex the ModifyIndex of
	// the last state recorded per allocation.
	nonDyno   map[string]bool
	seenIndex map[string]uint64
}

// publish writes the price and the checkpoint.
func (s *session) publish(ctx context.Context, checkpoint time.Time) error {
	meta := Meta{Price: s.m.cfg.Price, Checkpoint: checkpoint.UTC(), Holder: s.m.cfg.Holder}
	if err := s.m.cfg.Store.PutMeta(ctx, meta); err != nil {
		return err
	}
	s.checkpoint = meta.Checkpoint
	s.m.mu.Lock()
	s.m.synced = meta.Checkpoint
	s.m.mu.Unlock()
	return nil
}

// reconcile brings the ledger up to date with Nomad's allocations and returns the index
// to follow the event stream from.
func (s *session) reconcile(ctx context.Context) (uint64, error) {
	began := s.m.cfg.Now()
	stubs, index, err := s.m.cfg.Nomad.Allocs(ctx)
	if err != nil {
		return 0, err
	}
	present := map[string]bool{}
	for _, stub := range stubs {
		present[stub.ID] = true
		if s.nonDyno[stub.ID] {
			continue
		}
		if app, process, ok := s.rec.Known(stub.ID); ok {
			if _, err := s.rec.Observe(ctx, StateOfStub(stub, app, process)); err != nil {
				return 0, err
			}
			continue
		}
		if err := s.observe(ctx, stub.ID, stub.ModifyIndex); err != nil {
			return 0, err
		}
	}
	// Open runs of allocations Nomad no longer lists were garbage-collected while no
	// meter watched: close them at the last checkpoint, when they were last known.
	for _, id := range s.rec.OpenAllocs() {
		if present[id] {
			continue
		}
		a, err := s.m.cfg.Nomad.Alloc(ctx, id, 0)
		if err != nil {
			return 0, err
		}
		if a != nil {
			if err := s.observeAlloc(ctx, a); err != nil {
				return 0, err
			}
			continue
		}
		if _, err := s.rec.CloseGone(ctx, id, s.checkpoint); err != nil {
			return 0, err
		}
	}
	if err := s.publish(ctx, began); err != nil {
		return 0, err
	}
	s.m.logger.Info("ledger reconciled with nomad", "allocations", len(stubs), "index", index)
	return index, nil
}

// observe reads one allocation in full, as of Raft index minIndex or later, and records
// its state.
func (s *session) observe(ctx context.Context, id string, minIndex uint64) error {
	a, err := s.m.cfg.Nomad.Alloc(ctx, id, minIndex)
	if err != nil {
		return err
	}
	if a == nil {
		// Gone between the event and now: close what is open at this moment.
		if _, _, ok := s.rec.Known(id); ok {
			_, err := s.rec.CloseGone(ctx, id, s.m.cfg.Now())
			return err
		}
		return nil
	}
	return s.observeAlloc(ctx, a)
}

func (s *session) observeAlloc(ctx context.Context, a *nomadapi.Allocation) error {
	st, ok := StateOfAlloc(a)
	if !ok {
		s.nonDyno[a.ID] = true
		return nil
	}
	if _, err := s.rec.Observe(ctx, st); err != nil {
		return err
	}
	s.seenIndex[a.ID] = a.ModifyIndex
	return nil
}

// follow records allocation events from index until the stream fails or ctx ends.
func (s *session) follow(ctx context.Context, index uint64) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := s.m.cfg.Nomad.Stream(sctx, index)
	if err != nil {
		return err
	}
	tick := time.NewTicker(s.m.cfg.CheckpointInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if err := s.publish(ctx, s.m.cfg.Now()); err != nil {
				return err
			}
		case evs, ok := <-ch:
			if !ok {
				return errors.New("event stream closed")
			}
			if evs.Err != nil {
				return fmt.Errorf("event stream failed: %w", evs.Err)
			}
			for i := range evs.Events {
				if err := s.handle(ctx, &evs.Events[i]); err != nil {
					return err
				}
			}
		}
	}
}

// handle records one event. The payload only says which allocation changed: its
// numbers went through float64 in the stream's JSON decoding and its job is stripped,
// so the meter reads the allocation itself.
func (s *session) handle(ctx context.Context, ev *nomadapi.Event) error {
	if ev.Topic != nomadapi.TopicAllocation {
		return nil
	}
	id := ev.Key
	var modify uint64
	if a, err := ev.Allocation(); err == nil && a != nil {
		if a.ID != "" {
			id = a.ID
		}
		modify = a.ModifyIndex
	}
	if id == "" || s.nonDyno[id] {
		return nil
	}
	if modify != 0 && s.seenIndex[id] >= modify {
		return nil
	}
	if modify == 0 {
		modify = ev.Index
	}
	return s.observe(ctx, id, modify)
}
