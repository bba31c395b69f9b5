package meter

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Store holds the ledger: the run records and the meter's metadata.
type Store interface {
	// Runs returns the records of one app, or of every app when app is "".
	Runs(ctx context.Context, app string) ([]Record, error)
	// PutRuns writes records, each under its Key, replacing what was there.
	PutRuns(ctx context.Context, recs []Record) error
	// Meta returns the meter's metadata; the zero Meta when none was written.
	Meta(ctx context.Context) (Meta, error)
	// PutMeta writes the meter's metadata.
	PutMeta(ctx context.Context, m Meta) error
}

// Meta is what the meter publishes beside the ledger.
type Meta struct {
	// Price is the configured price of a dyno-hour; reports price the whole window at it.
	Price Price `json:"price_micro_usd_per_hour"`
	// Checkpoint is the last time the meter knew the ledger reflected every dyno start
	// and stop Nomad knew of.
	Checkpoint time.Time `json:"checkpoint"`
	// Holder names the meter that wrote this (host and process).
	Holder string `json:"holder,omitempty"`
}

// MemStore is a Store in memory, for tests and for programs that build a ledger from
// records they already hold.
type MemStore struct {
	mu   sync.Mutex
	runs map[string]Record
	meta Meta
	// Writes counts the records written, rewritten ones included.
	writes int
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty ledger in memory.
func NewMemStore() *MemStore { return &MemStore{runs: map[string]Record{}} }

// Runs implements Store.
func (s *MemStore) Runs(_ context.Context, app string) ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for _, r := range s.runs {
		if app == "" || r.App == app {
			out = append(out, r)
		}
	}
	sortRecords(out)
	return out, nil
}

// PutRuns implements Store.
func (s *MemStore) PutRuns(_ context.Context, recs []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		if err := r.validate(""); err != nil {
			return err
		}
		s.runs[r.Key()] = r
		s.writes++
	}
	return nil
}

// Meta implements Store.
func (s *MemStore) Meta(context.Context) (Meta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.meta, nil
}

// PutMeta implements Store.
func (s *MemStore) PutMeta(_ context.Context, m Meta) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.meta = m
	return nil
}

// Writes is how many records were written so far, rewrites included.
func (s *MemStore) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

func sortRecords(rs []Record) {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Key() < rs[j].Key() })
}
