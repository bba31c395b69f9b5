package meter

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
)

// Recorder writes the ledger records implied by allocation states, idempotently: it
// remembers what the ledger holds and writes only records that are new or changed, and
// never rewrites a closed one.
type Recorder struct {
	store  Store
	logger hclog.Logger

	mu      sync.Mutex
	byAlloc map[string]map[string]Record // alloc -> key -> record as stored
}

// NewRecorder returns a recorder writing to store. Call Load before Observe.
func NewRecorder(store Store, logger hclog.Logger) *Recorder {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Recorder{store: store, logger: logger, byAlloc: map[string]map[string]Record{}}
}

// Load reads the whole ledger into memory.
func (r *Recorder) Load(ctx context.Context) error {
	recs, err := r.store.Runs(ctx, "")
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byAlloc = map[string]map[string]Record{}
	for _, rec := range recs {
		r.remember(rec)
	}
	return nil
}

func (r *Recorder) remember(rec Record) {
	m := r.byAlloc[rec.Alloc]
	if m == nil {
		m = map[string]Record{}
		r.byAlloc[rec.Alloc] = m
	}
	m[rec.Key()] = rec
}

func (r *Recorder) existing(alloc string) []Record {
	m := r.byAlloc[alloc]
	out := make([]Record, 0, len(m))
	for _, rec := range m {
		out = append(out, rec)
	}
	sortRecords(out)
	return out
}

// Observe records what an allocation's current state says about its runs and returns
// the records it wrote.
func (r *Recorder) Observe(ctx context.Context, a AllocState) ([]Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	recs := deriveRecords(a, r.existing(a.ID))
	return recs, r.put(ctx, recs)
}

func (r *Recorder) put(ctx context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := r.store.PutRuns(ctx, recs); err != nil {
		return fmt.Errorf("failed to record %d runs: %w", len(recs), err)
	}
	for _, rec := range recs {
		r.remember(rec)
		if rec.Open() {
			r.logger.Info("dyno started", "app", rec.App, "process", rec.Process, "alloc", rec.Alloc,
				"task", rec.Task, "start", rec.Start.Format(time.RFC3339Nano))
		} else {
			r.logger.Info("dyno stopped", "app", rec.App, "process", rec.Process, "alloc", rec.Alloc,
				"task", rec.Task, "start", rec.Start.Format(time.RFC3339Nano),
				"end", rec.End.Format(time.RFC3339Nano), "reason", rec.EndReason)
		}
	}
	return nil
}

// Known returns the app and process type the ledger has for an allocation.
func (r *Recorder) Known(alloc string) (app, process string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.byAlloc[alloc] {
		return rec.App, rec.Process, true
	}
	return "", "", false
}

// OpenAllocs lists the allocations that have a run still open in the ledger.
func (r *Recorder) OpenAllocs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for id, m := range r.byAlloc {
		for _, rec := range m {
			if rec.Open() {
				out = append(out, id)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// CloseGone closes the open runs of an allocation that Nomad no longer knows (it was
// garbage-collected while the meter was down) at the time given, or at the run's start
// if that is later.
func (r *Recorder) CloseGone(ctx context.Context, alloc string, at time.Time) ([]Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var recs []Record
	for _, rec := range r.existing(alloc) {
		if rec.Open() {
			rec.close(laterOf(at, rec.Start), ReasonAllocGone)
			recs = append(recs, rec)
		}
	}
	return recs, r.put(ctx, recs)
}
