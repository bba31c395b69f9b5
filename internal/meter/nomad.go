package meter

import (
	"context"
	"fmt"
	"net/http"

	"github.com/dynogrid/dynogrid/internal/apierr"
	nomadapi "github.com/hashicorp/nomad/api"
)

// Nomad is what the meter asks of Nomad. NomadAPI implements it with the API client;
// tests replace it.
type Nomad interface {
	// Allocs lists the allocations of every namespace, with their task states, and
	// returns the Raft index the list reflects.
	Allocs(ctx context.Context) ([]*nomadapi.AllocationListStub, uint64, error)
	// Alloc returns one allocation with its job, or nil and no error when Nomad no
	// longer knows it.
	Alloc(ctx context.Context, id string) (*nomadapi.Allocation, error)
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

// Alloc implements Nomad.
func (n NomadAPI) Alloc(ctx context.Context, id string) (*nomadapi.Allocation, error) {
	// Nomad finds an allocation by its ID in any namespace.
	q := (&nomadapi.QueryOptions{}).WithContext(ctx)
	a, _, err := n.Client.Allocations().Info(id, q)
	if apierr.IsStatus(err, http.StatusNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read allocation %s: %w", id, err)
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
