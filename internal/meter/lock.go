package meter

import (
	"context"
	"fmt"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// Locker elects the one meter that writes the ledger.
type Locker interface {
	// Acquire blocks until this meter holds the lock or ctx ends. It returns a channel
	// that is closed if the lock is lost, and a function that releases it.
	Acquire(ctx context.Context) (lost <-chan struct{}, release func(), err error)
}

// ConsulLock is a Locker on a Consul session and the store's lock key. While held, it
// fences the store: every write checks that its session still holds the lock.
type ConsulLock struct {
	Client *consulapi.Client
	Store  *ConsulStore
	// Holder is written as the lock's value, to tell operators who holds it.
	Holder string
	// TTL of the session (default 15s): how long a meter that dies without releasing
	// keeps the lock.
	TTL time.Duration
}

var _ Locker = (*ConsulLock)(nil)

// Acquire implements Locker. It must not be called again before release.
func (l *ConsulLock) Acquire(ctx context.Context) (<-chan struct{}, func(), error) {
	ttl := l.TTL
	if ttl == 0 {
		ttl = 15 * time.Second
	}
	sessions := l.Client.Session()
	sid, _, err := sessions.Create(&consulapi.SessionEntry{
		Name: "dyno-meter", TTL: ttl.String(), Behavior: consulapi.SessionBehaviorRelease,
		LockDelay: time.Second,
	}, (&consulapi.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return nil, nil, fmt.Errorf("failed to create consul session: %w", err)
	}
	renewDone := make(chan struct{})
	go func() { _ = sessions.RenewPeriodic(ttl.String(), sid, nil, renewDone) }()

	lock, err := l.Client.LockOpts(&consulapi.LockOptions{
		Key: l.Store.LockKey(), Value: []byte(l.Holder), Session: sid,
		MonitorRetries: 5, MonitorRetryTime: time.Second,
		// The lock's blocking queries cannot be cancelled; short ones let a standby
		// meter stop within seconds. A released lock wakes them at once.
		LockWaitTime: 2 * time.Second,
	})
	if err != nil {
		close(renewDone)
		return nil, nil, fmt.Errorf("failed to prepare lock %s: %w", l.Store.LockKey(), err)
	}
	stop := make(chan struct{})
	acquired := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			close(stop)
		case <-acquired:
		}
	}()
	lost, err := lock.Lock(stop)
	close(acquired)
	if err != nil || lost == nil {
		close(renewDone) // RenewPeriodic destroys the session
		if err == nil {
			err = ctx.Err()
		}
		return nil, nil, fmt.Errorf("failed to acquire lock %s: %w", l.Store.LockKey(), err)
	}
	l.Store.Session = sid
	release := func() {
		l.Store.Session = ""
		_ = lock.Unlock()
		close(renewDone)
	}
	return lost, release, nil
}
