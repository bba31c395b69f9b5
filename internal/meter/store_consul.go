package meter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	consulapi "github.com/hashicorp/consul/api"
)

// DefaultPrefix is where the ledger lives in Consul KV.
const DefaultPrefix = "dynogrid/meter"

// ConsulStore keeps the ledger in Consul KV below Prefix:
//
//	<prefix>/runs/<app>/<alloc>/<task>/<start-unix-nanos>  one Record as JSON
//	<prefix>/meta                                          Meta as JSON
//	<prefix>/lock                                          the meter's lock
//
// When Session is set, every write is a transaction that first checks that the session
// still holds the lock key, so a meter that lost its lock cannot write.
type ConsulStore struct {
	KV     *consulapi.KV
	Txn    *consulapi.Txn
	Prefix string
	// Session, when set, fences writes by the lock held under <prefix>/lock.
	Session string
}

var _ Store = (*ConsulStore)(nil)

// maxTxnOps is Consul's limit on operations in one transaction.
const maxTxnOps = 64

// NewConsulStore returns a store below prefix (DefaultPrefix when empty).
func NewConsulStore(c *consulapi.Client, prefix string) *ConsulStore {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &ConsulStore{KV: c.KV(), Txn: c.Txn(), Prefix: strings.TrimSuffix(prefix, "/")}
}

// LockKey is the key the meter's lock is held on.
func (s *ConsulStore) LockKey() string { return s.Prefix + "/lock" }

func (s *ConsulStore) runsPrefix() string { return s.Prefix + "/runs/" }
func (s *ConsulStore) metaKey() string    { return s.Prefix + "/meta" }

// Runs implements Store. It fails on a record it cannot read rather than leave it out
// of a bill.
func (s *ConsulStore) Runs(ctx context.Context, app string) ([]Record, error) {
	prefix := s.runsPrefix()
	if app != "" {
		prefix += url.PathEscape(app) + "/"
	}
	pairs, _, err := s.KV.List(prefix, (&consulapi.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("failed to list ledger %s: %w", prefix, err)
	}
	out := make([]Record, 0, len(pairs))
	for _, p := range pairs {
		var r Record
		if err := json.Unmarshal(p.Value, &r); err != nil {
			return nil, fmt.Errorf("failed to decode ledger record %s: %w", p.Key, err)
		}
		if err := r.validate(strings.TrimPrefix(p.Key, s.runsPrefix())); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sortRecords(out)
	return out, nil
}

// PutRuns implements Store.
func (s *ConsulStore) PutRuns(ctx context.Context, recs []Record) error {
	var ops consulapi.TxnOps
	for _, r := range recs {
		if err := r.validate(""); err != nil {
			return err
		}
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("failed to encode ledger record %s: %w", r.Key(), err)
		}
		ops = append(ops, &consulapi.TxnOp{KV: &consulapi.KVTxnOp{
			Verb: consulapi.KVSet, Key: s.runsPrefix() + r.Key(), Value: b}})
	}
	return s.write(ctx, ops)
}

// Meta implements Store.
func (s *ConsulStore) Meta(ctx context.Context) (Meta, error) {
	p, _, err := s.KV.Get(s.metaKey(), (&consulapi.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return Meta{}, fmt.Errorf("failed to read %s: %w", s.metaKey(), err)
	}
	var m Meta
	if p == nil {
		return m, nil
	}
	if err := json.Unmarshal(p.Value, &m); err != nil {
		return Meta{}, fmt.Errorf("failed to decode %s: %w", s.metaKey(), err)
	}
	return m, nil
}

// PutMeta implements Store.
func (s *ConsulStore) PutMeta(ctx context.Context, m Meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("failed to encode meta: %w", err)
	}
	return s.write(ctx, consulapi.TxnOps{{KV: &consulapi.KVTxnOp{Verb: consulapi.KVSet, Key: s.metaKey(), Value: b}}})
}

// ErrNotLeader means a fenced write found the lock held by another session, or by none.
var ErrNotLeader = errors.New("the meter no longer holds the ledger lock")

func (s *ConsulStore) write(ctx context.Context, ops consulapi.TxnOps) error {
	per := maxTxnOps
	if s.Session != "" {
		per--
	}
	for len(ops) > 0 {
		n := min(per, len(ops))
		batch := ops[:n]
		ops = ops[n:]
		if s.Session != "" {
			batch = append(consulapi.TxnOps{{KV: &consulapi.KVTxnOp{
				Verb: consulapi.KVCheckSession, Key: s.LockKey(), Session: s.Session}}}, batch...)
		}
		ok, resp, _, err := s.Txn.Txn(batch, (&consulapi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return fmt.Errorf("failed to write ledger: %w", err)
		}
		if !ok {
			var msgs []string
			for _, e := range resp.Errors {
				msgs = append(msgs, fmt.Sprintf("op %d: %s", e.OpIndex, e.What))
			}
			if s.Session != "" {
				return fmt.Errorf("%w (%s)", ErrNotLeader, strings.Join(msgs, "; "))
			}
			return fmt.Errorf("failed to write ledger: %s", strings.Join(msgs, "; "))
		}
	}
	return nil
}
