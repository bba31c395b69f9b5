package meter

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/dynogrid/dynogrid/internal/apierr"
	nomadapi "github.com/hashicorp/nomad/api"
)

// Nomad is what the meter asks of Nomad. NomadAPI implements it with the API client;
// tests replace it.
type Nomad interface {
	// Allocs lists the allocations of every namespace, with their task states, and
	// returns the Raft index the list reflects.
	Allocs(ctx context.Context) ([]*nomadapi.AllocationListStub, uint64, error)
	// Alloc returns one allocation with its job as of Raft index minIndex or later, or
	// nil and no error when Nomad no longer knows it. Nomad publishes an event before it
	// commits the change to the state that reads see, so a read that follows an event
	// must wait for the event's index or it may see the allocation as it was.
	Alloc(ctx context.Context, id string, minIndex uint64) (*nomadapi.Allocation, error)
	// Stream follows the Allocation topic of the event stream from index.
	Stream(ctx context.Context, index uint64) (<-chan *nomadapi.Events, error)
}

// NomadAPI is Nomad through its HTTP API.
type NomadAPI struct {
	Client *nomadapi.Client
}

var _ Nomad = NomadAPI{}

// Allocs implements Nomad.
func (n NomadAPI) Allocs(ctx context.Context) ([]*nomadapi.AllocationListStub, uint64, error) {
	q := (&nomadapi.QueryOptions{Namespace: "*"}).WithContext(ctx)
	stubs, meta, err := n.Client.Allocations().List(q)
	if err != nil {
		return nil, 0, fmt.Errorf("failed to list allocations: %w", err)
	}
	return stubs, meta.LastIndex, nil
}

// allocWait bounds the wait for a committed change. Nomad commits right after it
// publishes, so only a server in trouble makes a read wait this long.
const allocWait = 10 * time.Second

// Alloc implements Nomad.
func (n NomadAPI) Alloc(ctx context.Context, id string, minIndex uint64) (*nomadapi.Allocation, error) {
	// Nomad finds an allocation by its ID in any namespace. A blocking query answers
	// once the allocation (or, when it is gone, the allocation table) is past WaitIndex.
	q := &nomadapi.QueryOptions{}
	if minIndex > 0 {
		q.WaitIndex, q.WaitTime = minIndex-1, allocWait
	}
	a, meta, err := n.Client.Allocations().Info(id, q.WithContext(ctx))
	if apierr.IsStatus(err, http.StatusNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read allocation %s: %w", id, err)
	}
	if meta != nil && meta.LastIndex < minIndex {
		return nil, fmt.Errorf("allocation %s is at index %d after %s, want %d or later", id, meta.LastIndex, allocWait, minIndex)
	}
	return a, nil
}

// Stream implements Nomad.
func (n NomadAPI) Stream(ctx context.Context, index uint64) (<-chan *nomadapi.Events, error) {
	topics := map[nomadapi.Topic][]string{nomadapi.TopicAllocation: {"*"}}
	ch, err := n.Client.EventStream().Stream(ctx, topics, index, &nomadapi.QueryOptions{Namespace: "*"})
	if err != nil {
		return nil, fmt.Errorf("failed to follow the event stream: %w", err)
	}
	return ch, nil
}
