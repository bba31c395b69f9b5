package router

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"hash/fnv"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
)

// Several routers behave as one: each app's queue lives in exactly one router, its
// owner, which holds all of the app's dynos; the other routers forward the app's
// requests to it. So an app has one FIFO queue however many routers clients reach,
// and one dyno never gets two requests at once. See docs/router.md.
//
//   - Each router registers itself in its Consul agent as a service (dyno-router) with
//     a TTL check it passes every heartbeat, and holds a Consul session tied to that
//     check and to its node's serfHealth; with the session it holds the key
//     dynogrid/router/members/<router-id>: the live routers are the keys that are held.
//   - Each app belongs to the live router that scores highest for the app's name under
//     rendezvous hashing: a router joining or leaving moves only its share of the apps.
//   - A router routes to a dyno only while it holds the dyno's lock,
//     dynogrid/router/dynos/<service-id>, acquired with its session. A router that
//     loses ownership stops giving the dyno new requests, waits until the dyno's last
//     request is over, and only then releases the lock; the new owner acquires it then.
//   - A router that dies stops passing its check, which turns critical after checkTTL;
//     a router whose agent dies loses its node's serfHealth. Either invalidates its
//     session, its keys are deleted, and after the lock-delay the others take its dynos
//     over. A router that cannot heartbeat for fenceAfter stops routing (it may no longer
//     own anything) well before the lock-delay lets another router in.
type cluster struct {
	r      *Router
	client *consulapi.Client
	id     string
	key    string // this router's peer key, new each start
	log    hclog.Logger
	kick   chan struct{}

	lastOK  atomic.Int64 // Unix ns of the last heartbeat that reached Consul
	noCheck atomic.Bool  // the router may not register its check: session only

	mu       sync.Mutex
	session  string
	fenced   bool
	members  []string              // live router IDs, sorted
	addrs    map[string]string     // router ID -> its client address
	keys     map[string]string     // router ID -> its peer key (see PeerKeyHeader)
	insts    map[string][]Instance // app -> its passing instances
	holders  map[string]string     // lock key -> holding session
	mine     map[string]bool       // dyno ID -> this router holds its lock
	leaving  map[string]bool       // dyno ID -> lock held, handing over
	routable map[string]int        // app -> dynos routed here (for logs)
	appOf    map[string]string     // dyno ID -> app, for dynos in mine
	owners   map[string]string     // app -> its owner at the last reconcile
	// steppingDown: the router has left the members (it is shutting down); it owns
	// nothing and hands every dyno over as its requests end.
	steppingDown bool
	// membersSeen is closed, and replaced, each time the members are read.
	membersSeen chan struct{}

	// ready is closed after the first reconcile that had the watcher's first table, a
	// session, the members and the locks: the router routes its share from then on.
	ready                          chan struct{}
	synced, membersRead, locksRead bool
	// tableIn is closed with synced: a router joins the members only then, so that the
	// apps it is to own move to it when it can serve them.
	tableIn chan struct{}
}

func newCluster(r *Router, client *consulapi.Client) *cluster {
	id := r.cfg.RouterID
	if id == "" {
		host, _ := os.Hostname()
		id = host + "-" + strings.ReplaceAll(r.Addr(), ":", "-")
	}
	key := make([]byte, 32)
	rand.Read(key)
	return &cluster{r: r, client: client, id: id, key: hex.EncodeToString(key), log: r.log.Named("cluster").With("router_id", id),
		kick: make(chan struct{}, 1), insts: map[string][]Instance{}, holders: map[string]string{},
		mine: map[string]bool{}, leaving: map[string]bool{}, routable: map[string]int{},
		appOf: map[string]string{}, addrs: map[string]string{}, owners: map[string]string{},
		ready: make(chan struct{}), membersSeen: make(chan struct{}), tableIn: make(chan struct{})}
}

// setSynced records that the watcher has its first table.
func (c *cluster) setSynced() {
	c.mu.Lock()
	if !c.synced {
		c.synced = true
		close(c.tableIn)
	}
	c.mu.Unlock()
	c.poke()
}

// Owner is the router, among the live routers members, that owns app's queue and dynos
// in cluster mode, or "" when there is none.
func Owner(members []string, app string) string { return owner(members, app) }

// ownerOf is the router that owns app by this router's view: "" while it knows of no
// live router, never itself while fenced or stepping down. Caller holds mu.
func (c *cluster) ownerOf(app string) string {
	o := owner(c.members, app)
	if o == c.id && (c.steppingDown || c.fenced || c.session == "") {
		others := make([]string, 0, len(c.members))
		for _, m := range c.members {
			if m != c.id {
				others = append(others, m)
			}
		}
		o = owner(others, app)
	}
	return o
}

func lockKey(dynoID string) string { return locksPrefix + url.PathEscape(dynoID) }

// score is the rendezvous weight of router for app.
func score(router, app string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(router))
	h.Write([]byte{0})
	h.Write([]byte(app))
	x := h.Sum64()
	// splitmix64 finaliser: spreads fnv's weak low bits.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// owner is the live router that owns app, or "" when there is none.
func owner(members []string, app string) string {
	best, bestScore := "", uint64(0)
	for _, m := range members {
		if s := score(m, app); best == "" || s > bestScore || (s == bestScore && m < best) {
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
	for _, f := range []func(context.Context){c.keepSession, c.watchdog, c.watchMembers, c.watchLocks} {
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
			c.leave(sess)
			return
		case <-c.kick:
			c.reconcile(ctx)
		}
	}
}

// watchList follows a KV prefix with blocking queries and hands each new listing to f.
func (c *cluster) watchList(ctx context.Context, prefix string, f func(consulapi.KVPairs)) {
	watchKV(ctx, c.client, prefix, func(pairs consulapi.KVPairs) {
		f(pairs)
		c.poke()
	}, nil)
}

func (c *cluster) watchMembers(ctx context.Context) {
	c.watchList(ctx, membersPrefix, func(pairs consulapi.KVPairs) {
		var live []string
		addrs, keys := map[string]string{}, map[string]string{}
		for _, p := range pairs {
			if p.Session != "" {
				id := strings.TrimPrefix(p.Key, membersPrefix)
				live = append(live, id)
				addrs[id], keys[id], _ = strings.Cut(string(p.Value), " ")
			}
		}
		sort.Strings(live)
		c.mu.Lock()
		if strings.Join(live, ",") != strings.Join(c.members, ",") {
			c.log.Info("router cluster changed", "members", strings.Join(live, ","))
		}
		c.members = live
		c.addrs, c.keys = addrs, keys
		c.membersRead = true
		close(c.membersSeen)
		c.membersSeen = make(chan struct{})
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
		c.locksRead = true
		c.mu.Unlock()
	})
}

type handover struct {
	a    *app
	key  string // dyno key in the app
	id   string // dyno ID (lock)
	sess string // the session that holds the lock
}

// reconcile acquires the locks of the dynos this router should own and are free, hands
// over those it should not own any more, and routes to exactly the dynos it holds.
func (c *cluster) reconcile(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var hand []handover
	present := map[string]bool{}
	retry := false
	var redirect []*app
	for app, insts := range c.insts {
		var routable []Instance
		own := c.ownerOf(app)
		mineNow := own == c.id
		if prev, ok := c.owners[app]; own != prev && own != "" && !mineNow && ok {
			// The queue moved to another router: the requests waiting here go there.
			redirect = append(redirect, c.r.appRef(app))
		}
		c.owners[app] = own
		for _, in := range insts {
			present[in.ID] = true
			if !mineNow {
				if c.mine[in.ID] && !c.leaving[in.ID] {
					c.leaving[in.ID] = true
					hand = append(hand, handover{key: in.key(), id: in.ID, a: c.r.appRef(app), sess: c.session})
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
		c.r.setApp(app, routable, insts)
	}
	for id := range c.mine {
		if !present[id] && !c.leaving[id] {
			c.leaving[id] = true
			hand = append(hand, handover{a: c.r.appRef(c.appOf[id]), id: id, sess: c.session})
		}
	}
	for _, app := range c.r.Apps() {
		if _, ok := c.insts[app]; !ok {
			c.r.RemoveApp(app)
			delete(c.routable, app)
			delete(c.owners, app)
		}
	}
	for _, a := range redirect {
		if n := a.redirect(); n > 0 {
			c.log.Debug("sent the app's waiting requests to its new owner", "app", a.name, "requests", n)
		}
	}
	for _, h := range hand {
		go c.handOver(ctx, h)
	}
	if c.synced && c.session != "" && c.membersRead && c.locksRead {
		select {
		case <-c.ready:
		default:
			close(c.ready)
		}
	}
	if retry {
		time.AfterFunc(acquireRetry, c.poke)
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
	// The release is tried until it succeeds: a lock left held by this router's session,
	// which lives on, would keep the dyno from its new owner for as long as this router
	// runs. It ends when the session does (its locks are gone then, and heartbeat has
	// forgotten them; what mine says now is the new session's).
	bo := backoff{}
	for {
		c.mu.Lock()
		same := c.session == h.sess
		c.mu.Unlock()
		if !same || h.sess == "" {
			return
		}
		_, _, err := c.client.KV().Release(&consulapi.KVPair{Key: lockKey(h.id), Session: h.sess}, (&consulapi.WriteOptions{}).WithContext(ctx))
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			break
		}
		c.log.Warn("failed to release a dyno; trying again", "dyno_id", h.id, "error", err)
		bo.wait(ctx)
	}
	c.mu.Lock()
	if c.session == h.sess {
		delete(c.mine, h.id)
		delete(c.leaving, h.id)
		delete(c.appOf, h.id)
	}
	c.mu.Unlock()
	c.poke()
}
