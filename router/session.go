package router

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// The timings of a router's membership in the cluster. They are chosen so that a router
// never routes to a dyno another router may have taken:
//
//   - Another router can acquire this router's locks only lockDelay after its session is
//     invalidated, and the session is invalidated at the earliest when the agent's node
//     leaves (serfHealth critical at once), at the latest checkTTL after the router's
//     last heartbeat reached its agent.
//   - The router stops routing (fences) fenceAfter after it sent its last heartbeat that
//     reached both its agent and the session: fenceAfter + watchdogEvery < lockDelay.
//
// A dead router's dynos are taken over after checkTTL + lockDelay (about 7 s) instead of
// the session TTL (10 to 20 s, Consul's minimum) + lockDelay. The session TTL stays as a
// backstop for an agent that keeps passing the check of a router it cannot see.
const (
	clusterPrefix = "dynogrid/router/"
	membersPrefix = clusterPrefix + "members/"
	locksPrefix   = clusterPrefix + "dynos/"

	// RouterService is the Consul service each cluster router registers in its agent.
	RouterService = "dyno-router"
	// MetricsMeta is the meta of RouterService that holds the router's -metrics-listen
	// address, where dyno-autoscaler reads its queue waits.
	MetricsMeta = "metrics"
	// IDMeta is the meta of RouterService that holds the router's -id.
	IDMeta = "router_id"

	sessionTTL     = 10 * time.Second
	checkTTL       = 3 * time.Second
	lockDelay      = 4 * time.Second
	heartbeatEvery = 500 * time.Millisecond
	fenceAfter     = 2 * time.Second
	watchdogEvery  = 100 * time.Millisecond
	acquireRetry   = 250 * time.Millisecond
	stepDownWait   = time.Second
)

func (c *cluster) serviceID() string { return routerServiceID(c.id) }

func routerServiceID(id string) string { return RouterService + "-" + id }

// SelfRegistered says whether an instance of RouterService is one a router registered
// itself, with its own Consul token: its ID is the one the router makes of its -id. An
// app's job may register any service through Nomad (whose Consul token writes every
// service), also one called dyno-router with a metrics address of its choosing; Nomad
// names every service it registers "_nomad-task-...", never that.
func SelfRegistered(s *consulapi.AgentService) bool {
	id := s.Meta[IDMeta]
	return id != "" && s.ID == routerServiceID(id)
}
func (c *cluster) checkID() string { return RouterService + "-" + c.id + "-alive" }

// register puts the router's service and TTL check (passing) in its agent.
func (c *cluster) register() error {
	err := c.client.Agent().ServiceRegister(&consulapi.AgentServiceRegistration{
		ID: c.serviceID(), Name: RouterService, Meta: map[string]string{IDMeta: c.id, MetricsMeta: c.r.cfg.MetricsListen},
		Check: &consulapi.AgentServiceCheck{CheckID: c.checkID(), Name: "dyno-router " + c.id + " alive",
			TTL: checkTTL.String(), Status: consulapi.HealthPassing, DeregisterCriticalServiceAfter: "1m"},
	})
	if err != nil {
		return fmt.Errorf("failed to register router %s in its Consul agent: %w", c.id, err)
	}
	return nil
}

// keepSession heartbeats every heartbeatEvery: it passes the router's check and renews
// its session, registering and joining when they are missing.
func (c *cluster) keepSession(ctx context.Context) {
	select {
	case <-c.tableIn:
	case <-ctx.Done():
		return
	}
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for ctx.Err() == nil {
		// A slow agent is not a dead one: a heartbeat may take until the router would
		// fence anyway (with heartbeatEvery, two calls of more than 250 ms each fenced
		// a router whose check and session Consul kept alive, and the other routers
		// kept sending it the apps it owned). It counts from when it was sent: Consul
		// passed the check and renewed the session after that.
		start := time.Now()
		hctx, cancel := context.WithTimeout(ctx, fenceAfter)
		err := c.heartbeat(hctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			c.lastOK.Store(start.UnixNano())
			c.setFenced(false, nil)
		} else {
			c.log.Debug("cluster heartbeat failed", "error", err)
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

func (c *cluster) heartbeat(ctx context.Context) error {
	q := (&consulapi.QueryOptions{}).WithContext(ctx)
	if c.noCheck.Load() {
		// No check to pass: the session alone.
	} else if err := c.client.Agent().UpdateTTLOpts(c.checkID(), "", consulapi.HealthPassing, q); err != nil {
		// The agent does not know the check (first beat, or an agent that lost its
		// state): register, and beat on the next tick.
		rerr := c.register()
		var se consulapi.StatusError
		switch {
		case rerr == nil:
			return fmt.Errorf("failed to pass the router's check: %w", err)
		case errors.As(rerr, &se) && se.Code == http.StatusForbidden:
			// An ACL token without service:write on dyno-router: the session
			// alone (TTL and node health) still keeps one request per dyno.
			c.log.Warn("no permission to register the router in Consul; a dead router's dynos are taken over only after its session TTL",
				"service", RouterService, "error", rerr)
			c.noCheck.Store(true)
		default:
			return errors.Join(err, rerr)
		}
	}
	c.mu.Lock()
	sess, steppingDown := c.session, c.steppingDown
	c.mu.Unlock()
	if sess == "" {
		if steppingDown {
			return nil // leaving: never join again
		}
		return c.join(ctx)
	}
	e, _, err := c.client.Session().Renew(sess, (&consulapi.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("failed to renew the cluster session: %w", err)
	}
	if e == nil {
		// Invalidated (a critical check, or the TTL): its locks are gone already.
		c.log.Warn("cluster session invalidated; joining again")
		c.mu.Lock()
		c.session = ""
		c.mine = map[string]bool{}
		c.leaving = map[string]bool{}
		steppingDown := c.steppingDown
		c.mu.Unlock()
		c.poke()
		if steppingDown {
			return nil
		}
		return c.join(ctx)
	}
	return nil
}

// watchdog fences the router when its last good heartbeat is older than fenceAfter.
func (c *cluster) watchdog(ctx context.Context) {
	t := time.NewTicker(watchdogEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		last := c.lastOK.Load()
		if last != 0 && time.Since(time.Unix(0, last)) > fenceAfter {
			c.setFenced(true, fmt.Errorf("no heartbeat reached Consul for %s", fenceAfter))
		}
	}
}

func (c *cluster) setFenced(f bool, err error) {
	c.mu.Lock()
	changed := c.fenced != f
	c.fenced = f
	c.mu.Unlock()
	if !changed {
		return
	}
	if f {
		c.log.Error("cannot reach Consul; routing to no dyno until it is back", "error", err)
	} else {
		c.log.Info("cluster heartbeat back; routing again")
	}
	c.poke()
}

// join creates a session tied to the router's check and its node's health, and takes
// the member key with it.
func (c *cluster) join(ctx context.Context) error {
	wo := (&consulapi.WriteOptions{}).WithContext(ctx)
	entry := &consulapi.SessionEntry{
		Name: "dyno-router " + c.id, TTL: sessionTTL.String(), Behavior: consulapi.SessionBehaviorDelete,
		LockDelay: lockDelay, NodeChecks: []string{"serfHealth"},
	}
	if !c.noCheck.Load() {
		entry.ServiceChecks = []consulapi.ServiceCheck{{ID: c.checkID()}}
	}
	sess, _, err := c.client.Session().Create(entry, wo)
	if err != nil {
		return fmt.Errorf("failed to create a cluster session: %w", err)
	}
	ok, _, err := c.client.KV().Acquire(&consulapi.KVPair{Key: membersPrefix + c.id, Value: []byte(c.r.advertise() + " " + c.key), Session: sess}, wo)
	if err == nil && !ok {
		err = fmt.Errorf("router id %q is taken by another live router", c.id)
	}
	if err != nil {
		_, _ = c.client.Session().Destroy(sess, nil)
		return fmt.Errorf("failed to join the cluster: %w", err)
	}
	c.mu.Lock()
	c.session = sess
	c.mu.Unlock()
	c.log.Info("joined the router cluster", "session", sess)
	c.poke()
	return nil
}

// stepDown begins a graceful exit: the router gives up its member key, so that the other
// routers take its apps over at once (their queues move there, and each dyno follows as
// its last request here ends), while it finishes what it has and forwards the requests
// that still reach it to their new owners. The session, and with it every lock it still
// holds, ends in leave.
func (c *cluster) stepDown(ctx context.Context) {
	c.mu.Lock()
	c.steppingDown = true
	sess := c.session
	c.mu.Unlock()
	c.poke()
	if sess == "" {
		return
	}
	_, _, err := c.client.KV().Release(&consulapi.KVPair{Key: membersPrefix + c.id, Session: sess}, (&consulapi.WriteOptions{}).WithContext(ctx))
	if err != nil {
		c.log.Warn("failed to step down from the cluster; peers take over when the router leaves", "error", err)
		return
	}
	c.log.Info("stepped down from the router cluster; handing apps over")
	// Its peers learn of it through their watches of the members, as this router does:
	// once this router's own watch shows it gone, theirs most likely do too, and they no
	// longer send it requests when its listener closes.
	deadline := time.NewTimer(stepDownWait)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		gone, seen := !slices.Contains(c.members, c.id), c.membersSeen
		c.mu.Unlock()
		if gone {
			return
		}
		select {
		case <-seen:
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// leave destroys the session (releasing every lock at once; by then the router has
// drained its requests) and deregisters the router from its agent.
func (c *cluster) leave(sess string) {
	if sess != "" {
		if _, err := c.client.Session().Destroy(sess, nil); err != nil {
			c.log.Warn("failed to leave the cluster; peers take over when the router's check turns critical", "error", err)
		}
	}
	if c.noCheck.Load() {
		return
	}
	if err := c.client.Agent().ServiceDeregister(c.serviceID()); err != nil {
		c.log.Warn("failed to deregister the router from its Consul agent", "error", err)
	}
}
