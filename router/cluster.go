package router

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
)

// Several routers share an app's dynos without ever giving one dyno two requests at
// once: each dyno is owned by exactly one router at a time.
//
//   - Each router holds a Consul session (TTL) and, with it, the key
//     dynogrid/router/members/<router-id>: the live routers are the keys that are held.
//   - Each dyno (Consul service ID) belongs to the live router that scores highest for
//     it under rendezvous hashing: a router joining or leaving moves only its share.
//   - A router routes to a dyno only while it holds the dyno's lock,
//     dynogrid/router/dynos/<service-id>, acquired with its session. A router that
//     loses ownership stops giving the dyno new requests, waits until the dyno's last
//     request is over, and only then releases the lock; the new owner acquires it then.
//   - A router that cannot renew its session for half its TTL stops routing (it may no
//     longer own anything); a router that dies loses its session after the TTL and its
//     locks are deleted, so the others take its dynos over.
const (
	clusterPrefix = "dynogrid/router/"
	membersPrefix = clusterPrefix + "members/"
	locksPrefix   = clusterPrefix + "dynos/"
	sessionTTL    = 10 * time.Second
	lockDelay     = time.Second
)

type cluster struct {
	r      *Router
	client *consulapi.Client
	id     string
	log    hclog.Logger
	kick   chan struct{}

	mu       sync.Mutex
	session  string
	fenced   bool
	members  []string              // live router IDs, sorted
	addrs    map[string]string     // router ID -> its client address
	insts    map[string][]Instance // app -> its passing instances
	holders  map[string]string     // lock key -> holding session
	mine     map[string]bool       // dyno ID -> this router holds its lock
	leaving  map[string]bool       // dyno ID -> lock held, handing over
	routable map[string]int        // app -> dynos routed here (for logs)
	appOf    map[string]string     // dyno ID -> app, for dynos in mine
}

func newCluster(r *Router, client *consulapi.Client) *cluster {
	id := r.cfg.RouterID
	if id == "" {
		host, _ := os.Hostname()
		id = host + "-" + strings.ReplaceAll(r.Addr(), ":", "-")
	}
	return &cluster{r: r, client: client, id: id, log: r.log.Named("cluster").With("router_id", id),
		kick: make(chan struct{}, 1), insts: map[string][]Instance{}, holders: map[string]string{},
		mine: map[string]bool{}, leaving: map[string]bool{}, routable: map[string]int{},
		appOf: map[string]string{}, addrs: map[string]string{}}
}

func lockKey(dynoID string) string { return locksPrefix + url.PathEscape(dynoID) }

// score is the rendezvous weight of router for dyno.
func score(router, dyno string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(router))
	h.Write([]byte{0})
	h.Write([]byte(dyno))
	x := h.Sum64()
	// splitmix64 finaliser: spreads fnv's weak low bits.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// owner is the live router that owns dyno, or "" when there is none.
func owner(members []string, dyno string) string {
	best, bestScore := "", uint64(0)
	for _, m := range members {
		if s := score(m, dyno); best == "" || s > bestScore || (s == bestScore && m < best) {
			best, bestScore = m, s
		}
	}
	return best
}

func (c *cluster) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// setInstances records an app's passing instances (nil: the app left).
func (c *cluster) setInstances(app string, insts []Instance) {
	c.mu.Lock()
	if insts == nil {
		delete(c.insts, app)
	} else {
		c.insts[app] = insts
	}
	c.mu.Unlock()
	c.poke()
}

// run takes part in the cluster until ctx ends, then leaves it (destroying the session
// releases every lock at once; by then the router has drained its requests).
func (c *cluster) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, f := range []func(context.Context){c.keepSession, c.watchMembers, c.watchLocks} {
		wg.Add(1)
		go func(f func(context.Context)) { defer wg.Done(); f(ctx) }(f)
	}
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			c.mu.Lock()
			sess := c.session
			c.mu.Unlock()
			if sess != "" {
				if _, err := c.client.Session().Destroy(sess, nil); err != nil {
					c.log.Warn("failed to leave the cluster; peers take over after the session TTL", "error", err)
				}
			}
			return
		case <-c.kick:
			c.reconcile(ctx)
		}
	}
}

// keepSession creates the router's session and member key and renews them; it fences
// the router when renewal fails for half the TTL and starts over when the session is
// gone.
func (c *cluster) keepSession(ctx context.Context) {
	var lastOK time.Time
	bo := backoff{}
	t := time.NewTicker(sessionTTL / 4)
	defer t.Stop()
	for ctx.Err() == nil {
		c.mu.Lock()
		sess := c.session
		c.mu.Unlock()
		var err error
		if sess == "" {
			err = c.join(ctx)
		} else {
			var e *consulapi.SessionEntry
			e, _, err = c.client.Session().Renew(sess, (&consulapi.WriteOptions{}).WithContext(ctx))
			if err == nil && e == nil {
				c.log.Warn("session expired; joining again")
				c.mu.Lock()
				c.session = ""
				c.mine = map[string]bool{}
				c.leaving = map[string]bool{}
				c.mu.Unlock()
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if !lastOK.IsZero() && time.Since(lastOK) > sessionTTL/2 {
				c.setFenced(true, err)
			}
			bo.wait(ctx)
			continue
		}
		bo.reset()
		lastOK = time.Now()
		c.setFenced(false, nil)
		select {
		case <-ctx.Done():
		case <-t.C:
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
		c.log.Error("cannot renew the cluster session; routing to no dyno until it is back", "error", err)
	} else {
		c.log.Info("cluster session renewed; routing again")
	}
	c.poke()
}

// join creates a session and takes the member key with it.
func (c *cluster) join(ctx context.Context) error {
	wo := (&consulapi.WriteOptions{}).WithContext(ctx)
	sess, _, err := c.client.Session().Create(&consulapi.SessionEntry{
		Name: "dyno-router " + c.id, TTL: sessionTTL.String(), Behavior: consulapi.SessionBehaviorDelete,
		LockDelay: lockDelay,
	}, wo)
	if err != nil {
		return fmt.Errorf("failed to create a cluster session: %w", err)
	}
	ok, _, err := c.client.KV().Acquire(&consulapi.KVPair{Key: membersPrefix + c.id, Value: []byte(c.r.advertise()), Session: sess}, wo)
	if err == nil && !ok {
		err = fmt.Errorf("router id %q is taken by another live router", c.id)
	}
	if err != nil {
		c.client.Session().Destroy(sess, nil)
		return fmt.Errorf("failed to join the cluster: %w", err)
	}
	c.mu.Lock()
	c.session = sess
	c.mu.Unlock()
	c.log.Info("joined the router cluster", "session", sess)
	c.poke()
	return nil
}

// watchList follows a KV prefix with blocking queries and hands each new listing to f.
func (c *cluster) watchList(ctx context.Context, prefix string, f func(consulapi.KVPairs)) {
	var index uint64
	bo := backoff{}
	for ctx.Err() == nil {
		q := (&consulapi.QueryOptions{WaitIndex: index, WaitTime: blockWait}).WithContext(ctx)
		pairs, meta, err := c.client.KV().List(prefix, q)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			bo.wait(ctx)
			continue
		}
		bo.reset()
		if meta.LastIndex == index {
			continue
		}
		index = nextIndex(index, meta.LastIndex)
		f(pairs)
		c.poke()
	}
}

func (c *cluster) watchMembers(ctx context.Context) {
	c.watchList(ctx, membersPrefix, func(pairs consulapi.KVPairs) {
		var live []string
		addrs := map[string]string{}
		for _, p := range pairs {
			if p.Session != "" {
				id := strings.TrimPrefix(p.Key, membersPrefix)
				live = append(live, id)
				addrs[id] = string(p.Value)
			}
		}
		sort.Strings(live)
		c.mu.Lock()
		if strings.Join(live, ",") != strings.Join(c.members, ",") {
			c.log.Info("router cluster changed", "members", strings.Join(live, ","))
		}
		c.members = live
		c.addrs = addrs
		c.mu.Unlock()
	})
}

func (c *cluster) watchLocks(ctx context.Context) {
	c.watchList(ctx, locksPrefix, func(pairs consulapi.KVPairs) {
		h := make(map[string]string, len(pairs))
		for _, p := range pairs {
			h[p.Key] = p.Session
		}
		c.mu.Lock()
		c.holders = h
		c.mu.Unlock()
	})
}

type handover struct {
	a   *app
	key string // dyno key in the app
	id  string // dyno ID (lock)
}

// reconcile acquires the locks of the dynos this router should own and are free, hands
// over those it should not own any more, and routes to exactly the dynos it holds.
func (c *cluster) reconcile(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var hand []handover
	present := map[string]bool{}
	retry := false
	for app, insts := range c.insts {
		var routable []Instance
		for _, in := range insts {
			present[in.ID] = true
			mineNow := !c.fenced && c.session != "" && owner(c.members, in.ID) == c.id
			if !mineNow {
				if c.mine[in.ID] && !c.leaving[in.ID] {
					c.leaving[in.ID] = true
					hand = append(hand, handover{key: in.key(), id: in.ID, a: c.r.appRef(app)})
				}
				continue
			}
			if c.leaving[in.ID] {
				continue // wait for the handover to finish, then take it again
			}
			if !c.mine[in.ID] {
				if h := c.holders[lockKey(in.ID)]; h != "" && h != c.session {
					continue // another router still holds it
				}
				ok, _, err := c.client.KV().Acquire(&consulapi.KVPair{Key: lockKey(in.ID), Value: []byte(c.id), Session: c.session},
					(&consulapi.WriteOptions{}).WithContext(ctx))
				if err != nil || !ok {
					// Lock-delay after a dead router's session, or a race with the
					// previous owner: try again shortly.
					retry = true
					continue
				}
				c.mine[in.ID] = true
				c.appOf[in.ID] = app
			}
			routable = append(routable, in)
		}
		if c.routable[app] != len(routable) {
			c.log.Debug("dynos routed here", "app", app, "count", len(routable), "of", len(insts))
			c.routable[app] = len(routable)
		}
		c.r.SetApp(app, routable)
	}
	for id := range c.mine {
		if !present[id] && !c.leaving[id] {
			c.leaving[id] = true
			hand = append(hand, handover{a: c.r.appRef(c.appOf[id]), id: id})
		}
	}
	for _, app := range c.r.Apps() {
		if _, ok := c.insts[app]; !ok {
			c.r.RemoveApp(app)
			delete(c.routable, app)
		}
	}
	for _, h := range hand {
		go c.handOver(ctx, h)
	}
	if retry {
		time.AfterFunc(lockDelay/2, c.poke)
	}
}

// handOver waits until this router's last request on a dyno is over, then releases the
// dyno's lock for its new owner.
func (c *cluster) handOver(ctx context.Context, h handover) {
	if h.a != nil {
		var ch <-chan struct{}
		if h.key != "" {
			ch = h.a.drained(h.key)
		} else {
			ch = h.a.drainedID(h.id)
		}
		if ch != nil {
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
	}
	c.mu.Lock()
	sess := c.session
	c.mu.Unlock()
	_, _, err := c.client.KV().Release(&consulapi.KVPair{Key: lockKey(h.id), Session: sess}, (&consulapi.WriteOptions{}).WithContext(ctx))
	if err != nil && ctx.Err() == nil {
		c.log.Warn("failed to release a dyno; it stays with this router until the session ends", "dyno_id", h.id, "error", err)
	}
	c.mu.Lock()
	delete(c.mine, h.id)
	delete(c.leaving, h.id)
	delete(c.appOf, h.id)
	c.mu.Unlock()
	c.poke()
}
