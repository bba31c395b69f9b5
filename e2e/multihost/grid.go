// Package multihost starts a grid of several hosts on one machine for tests: each host a
// network namespace joined to a test bridge, with its own address, its own Consul client
// agent and Nomad client (own data dir and cgroup parent); server hosts run the Consul
// and Nomad servers; each router host runs a Consul client agent and dyno-router, which
// follows that agent; a store host runs the slug store (nginx). Every agent and the store
// are configured from the files of examples/cluster, with TLS, gossip encryption and
// ACLs, certificates and keys made at test time. Faults are injected into hosts and
// dynos, and everything is torn down after the test, also after a failure. Traffic stays
// between this machine and its test hosts.
package multihost

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// StartTimeout bounds how long a grid may take to become healthy.
const StartTimeout = 2 * time.Minute

// Options shape a grid.
type Options struct {
	// Servers is the number of server hosts (default 1).
	Servers int
	// Hosts is the number of client hosts (default 3).
	Hosts int
	// Routers is the number of router hosts (default 1), each with its own Consul client
	// agent and a dyno-router following it.
	Routers int
	// Cluster runs the routers in cluster mode (-cluster), sharing the app's dynos.
	Cluster bool
	// RouterJob makes the router hosts edge hosts: each runs a Nomad client of node class
	// edge, and the routers run as the system job examples/cluster/jobs/dyno-router.nomad.hcl
	// (in cluster mode) rather than as processes the grid starts.
	RouterJob bool
	// Laptop adds a host that runs no agent: only the dyno CLI (Grid.Laptop).
	Laptop bool
	// Postgres runs a PostgreSQL server for the postgres add-on on the bridge's address,
	// which dynos may reach (the driver's allowed_endpoints); Grid.AddonConfig holds
	// the add-on settings.
	Postgres bool
	// Memcached gives the client hosts an add-on network (an interface of its own, which
	// dynos may reach) and adds the memcached add-on to Grid.AddonConfig: Nomad over
	// HTTPS with the grid's CA.
	Memcached bool
}

// Host is one test host: a network namespace with an address on the grid's bridge.
type Host struct {
	// Name is the host's Nomad node name and Consul node name: server, host1, host2...
	Name string
	// NS is its network namespace (ip netns).
	NS string
	// Addr is its address on the bridge.
	Addr string
	// Dir holds its agents' data and logs.
	Dir string
	// CgroupParent is the dyno driver's cgroup parent on this host.
	CgroupParent string
	// Veth is the root namespace's end of the host's link to the bridge.
	Veth string
	logs []string
	// agents are the host's Consul and Nomad agents as their units started them.
	agents map[string]*agentProc
}

// Grid is a running multi-host grid.
type Grid struct {
	t      testing.TB
	Net    int // the grid's subnet is 10.213.Net.0/24, its bridge dgbr<Net>
	Bridge string
	Dir    string
	BinDir string
	// Server is the first server host; Servers are all of them.
	Server  *Host
	Servers []*Host
	Hosts   []*Host
	// Store is the slug store's host, Laptop the host with only the CLI (or nil).
	Store  *Host
	Laptop *Host
	// Routers are the router hosts, each running dyno-router.
	Routers []*Router
	// RouterAddr is the first router's client address; Host <app>.localhost.
	RouterAddr string
	cluster    bool
	routerJob  bool
	postgres   string // the postgres add-on's server, host:port, or ""
	memcached  bool
	repo       string
	ca         *testCA
	keys       map[string]string // gossip keys: CONSUL_GOSSIP_KEY, NOMAD_GOSSIP_KEY
	made       []*Host           // every host whose namespace was created, for teardown
	mu         sync.Mutex
	procs      []*proc
	nomad      *nomadapi.Client
	consul     *consulapi.Client
	tokens     *devgrid.Tokens
	// units are examples/cluster/systemd's units, by agent: consul, nomad.
	units map[string]*unit
}

// proc is a process the grid started.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
}

// Start builds a grid of opts.Hosts client hosts and a server host and returns once every
// agent is healthy, every Nomad client is ready with the dyno driver, and the router
// accepts connections. t.Cleanup tears it all down.
func Start(t testing.TB, opts Options) *Grid {
	t.Helper()
	testutil.E2E(t, "makes network namespaces and runs agents on test hosts, as root", testutil.Root,
		testutil.Program("ip"), testutil.Program("nginx"))
	if opts.Servers == 0 {
		opts.Servers = 1
	}
	if opts.Hosts == 0 {
		opts.Hosts = 3
	}
	if opts.Routers == 0 {
		opts.Routers = 1
	}
	dir, err := os.MkdirTemp("", "dynogrid-mh-")
	if err != nil {
		t.Fatal(err)
	}
	binDir, err := filepath.Abs(harness.BinDir(t))
	if err != nil {
		t.Fatal(err)
	}
	g := &Grid{t: t, Dir: dir, BinDir: binDir, cluster: opts.Cluster || opts.RouterJob,
		routerJob: opts.RouterJob, memcached: opts.Memcached, repo: harness.RepoRoot(t)}
	t.Cleanup(g.teardown)
	g.units = map[string]*unit{}
	for _, name := range []string{"consul", "nomad"} {
		if g.units[name], err = loadUnit(g.repo, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.createBridge(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= opts.Servers; i++ {
		h, err := g.addHost(fmt.Sprintf("server%d", i), 1+i)
		if err != nil {
			t.Fatal(err)
		}
		g.Servers = append(g.Servers, h)
	}
	g.Server = g.Servers[0]
	if g.Store, err = g.addHost("store", 9); err != nil {
		t.Fatal(err)
	}
	if opts.Laptop {
		if g.Laptop, err = g.addHost("laptop", 8); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= opts.Hosts; i++ {
		h, err := g.addHost(fmt.Sprintf("host%d", i), 10+i)
		if err != nil {
			t.Fatal(err)
		}
		g.Hosts = append(g.Hosts, h)
	}
	for i := 1; i <= opts.Routers; i++ {
		h, err := g.addHost(fmt.Sprintf("router%d", i), 20+i)
		if err != nil {
			t.Fatal(err)
		}
		g.Routers = append(g.Routers, &Router{Host: h, ID: h.Name,
			Addr: h.Addr + ":" + routerPort, MetricsAddr: h.Addr + ":" + routerMetricsPort})
	}
	g.RouterAddr = g.Routers[0].Addr
	if opts.Memcached {
		if err := g.makeAddonNetwork(); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.makeSecrets(); err != nil {
		t.Fatal(err)
	}
	if opts.Postgres {
		if err := g.startPostgres(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	if err := g.startStore(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.startAgents(ctx); err != nil {
		t.Fatal(err)
	}
	return g
}

// createBridge creates the first free bridge dgbr<n> with 10.213.<n>.1/24.
func (g *Grid) createBridge() error {
	start := os.Getpid() % 200
	for i := 0; i < 200; i++ {
		n := 10 + (start+i)%200
		name := fmt.Sprintf("dgbr%d", n)
		if _, err := ip("link", "add", name, "type", "bridge"); err != nil {
			continue
		}
		g.Net, g.Bridge = n, name
		if _, err := ip("addr", "add", fmt.Sprintf("10.213.%d.1/24", n), "dev", name); err != nil {
			return err
		}
		_, err := ip("link", "set", name, "up")
		return err
	}
	return errors.New("multihost: no free test bridge dgbr10..dgbr209")
}

// addHost creates a network namespace joined to the bridge at 10.213.<n>.<last>. Its
// default route is unreachable, so nothing a host sends leaves the test subnet (the Nomad
// client is told its network interface, so it needs no default route).
func (g *Grid) addHost(name string, last int) (*Host, error) {
	short := name[:2]
	if n, ok := strings.CutPrefix(name, "host"); ok {
		short = "h" + n
	} else if n, ok := strings.CutPrefix(name, "router"); ok {
		short = "r" + n
	} else if n, ok := strings.CutPrefix(name, "server"); ok {
		short = "s" + n
	}
	h := &Host{
		Name:         name,
		NS:           fmt.Sprintf("dg%d-%s", g.Net, name),
		Addr:         fmt.Sprintf("10.213.%d.%d", g.Net, last),
		Dir:          filepath.Join(g.Dir, name),
		CgroupParent: fmt.Sprintf("dgmh%d%s", g.Net, short),
		Veth:         fmt.Sprintf("dg%d%s", g.Net, short),
		agents:       map[string]*agentProc{},
	}
	if err := os.MkdirAll(h.Dir, 0o755); err != nil {
		return nil, err
	}
	g.made = append(g.made, h)
	veth := h.Veth
	steps := [][]string{
		{"netns", "add", h.NS},
		{"-n", h.NS, "link", "set", "lo", "up"},
		{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
		{"link", "set", veth, "master", g.Bridge},
		{"link", "set", veth, "up"},
		{"-n", h.NS, "addr", "add", h.Addr + "/24", "dev", "eth0"},
		{"-n", h.NS, "link", "set", "eth0", "up"},
		{"-n", h.NS, "route", "add", "unreachable", "default"},
	}
	for _, s := range steps {
		if _, err := ip(s...); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// start runs bin in host h's network namespace, in its own session, logging to
// <host dir>/<name>.log. nsenter execs bin: the process is bin itself.
func (g *Grid) start(h *Host, name, bin string, args ...string) (*proc, error) {
	return g.startEnv(h, nil, name, bin, args...)
}

// startEnv starts a process with env added to this process's environment: a component
// gets its token this way rather than on its command line.
func (g *Grid) startEnv(h *Host, env []string, name, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(h.Dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + h.NS, bin}, args...)...)
	h.logs = append(h.logs, logPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = h.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	g.mu.Lock()
	g.procs = append(g.procs, p)
	g.mu.Unlock()
	return p, nil
}

func (g *Grid) startAgents(ctx context.Context) error {
	pluginDir := filepath.Join(g.Dir, "plugins")
	if err := linkPlugins(g.BinDir, pluginDir); err != nil {
		return err
	}
	for _, s := range g.Servers {
		if err := g.startConsul(s); err != nil {
			return err
		}
	}
	if err := g.wait(ctx, "consul servers", g.consulLeader); err != nil {
		return err
	}
	if err := g.bootstrapConsul(ctx); err != nil {
		return err
	}
	// Every Consul agent runs before any Nomad client starts: a client whose first
	// fingerprint misses its Consul agent is left out of placements for a long while.
	for _, h := range g.consulHosts() {
		if err := g.startConsul(h); err != nil {
			return err
		}
	}
	if err := g.wait(ctx, "consul clients", g.consulMembers); err != nil {
		return err
	}
	// nomad.service starts After=consul.service, which for Type=notify means once
	// Consul has said READY=1.
	for _, h := range append(g.consulHosts(), g.Servers...) {
		if err := g.waitAgentReady(ctx, h, "consul"); err != nil {
			return err
		}
	}
	for _, s := range g.Servers {
		if err := g.startNomadAgent(s, "nomad/server.hcl", pluginDir); err != nil {
			return err
		}
	}
	if err := g.bootstrapNomad(ctx); err != nil {
		return err
	}
	if g.memcached {
		if err := g.configureMemcached(ctx); err != nil {
			return err
		}
	}
	for _, h := range g.Hosts {
		if err := g.startNomad(h, pluginDir); err != nil {
			return err
		}
	}
	if g.routerJob {
		for _, r := range g.Routers {
			if err := g.startNomadAgent(r.Host, "nomad/edge.hcl", pluginDir); err != nil {
				return err
			}
		}
	}
	if err := g.wait(ctx, "nomad clients", g.clientsReady); err != nil {
		return err
	}
	if g.routerJob {
		return g.runRouterJob(ctx)
	}
	for _, r := range g.Routers {
		if err := g.startRouter(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// consulHosts are the hosts with a Consul client agent: client and router hosts.
func (g *Grid) consulHosts() []*Host {
	hosts := append([]*Host{}, g.Hosts...)
	for _, r := range g.Routers {
		hosts = append(hosts, r.Host)
	}
	return hosts
}

// isServer tells whether h is a server host.
func (g *Grid) isServer(h *Host) bool {
	for _, s := range g.Servers {
		if s == h {
			return true
		}
	}
	return false
}

// startConsul starts host h's Consul agent, a server or a client, configured from
// examples/cluster/consul/ and started as consul.service does.
func (g *Grid) startConsul(h *Host) error {
	file := "consul/client.hcl"
	if g.isServer(h) {
		file = "consul/server.hcl"
	}
	return g.startAgent(h, "consul", file, g.hostVars(h))
}

// startNomad starts a client host's Nomad client.
func (g *Grid) startNomad(h *Host, pluginDir string) error {
	return g.startNomadAgent(h, "nomad/client.hcl", pluginDir)
}

// startNomadAgent starts host h's Nomad agent configured from examples/cluster/<file>,
// as nomad.service does.
func (g *Grid) startNomadAgent(h *Host, file, pluginDir string) error {
	vars := g.hostVars(h)
	vars["PLUGIN_DIR"] = pluginDir
	return g.startAgent(h, "nomad", file, vars)
}

// ConsulAddr is the first server host's Consul HTTPS address.
func (g *Grid) ConsulAddr() string { return g.Server.Addr + ":8501" }

// NomadAddr is the first server host's Nomad HTTPS address.
func (g *Grid) NomadAddr() string { return g.Server.Addr + ":4646" }

// NomadURL is NomadAddr as a URL.
func (g *Grid) NomadURL() string { return "https://" + g.NomadAddr() }

// CAFile is the grid's CA certificate.
func (g *Grid) CAFile() string { return g.ca.File }

// NomadClient is an API client for the Nomad server, one per grid: the agents limit
// the connections of one address.
func (g *Grid) NomadClient() *nomadapi.Client {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.nomad == nil {
		cfg := g.nomadConfig(g.NomadAddr())
		cfg.SecretID = g.tokens.NomadManagement
		c, err := nomadapi.NewClient(cfg)
		if err != nil {
			g.t.Fatal(err)
		}
		g.nomad = c
	}
	return g.nomad
}

// ConsulClient is an API client for the server host's Consul agent, one per grid.
func (g *Grid) ConsulClient() *consulapi.Client {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.consul == nil {
		cfg := g.consulConfig(g.ConsulAddr())
		cfg.Token = g.tokens.ConsulManagement
		c, err := consulapi.NewClient(cfg)
		if err != nil {
			g.t.Fatal(err)
		}
		g.consul = c
	}
	return g.consul
}

// HostByName returns the client host with a Nomad node name, or nil.
func (g *Grid) HostByName(name string) *Host {
	for _, h := range g.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// HostByAddr returns the client host with an address, or nil.
func (g *Grid) HostByAddr(addr string) *Host {
	for _, h := range g.Hosts {
		if h.Addr == addr {
			return h
		}
	}
	return nil
}

// KillHost SIGKILLs every process of host h at once: its Nomad client, its Consul agent
// and its dynos. It returns how many processes it killed.
func (g *Grid) KillHost(h *Host) (int, error) {
	return killNS(h.NS, 10*time.Second)
}

func (g *Grid) consulLeader(ctx context.Context) error {
	anon, err := consulapi.NewClient(g.consulConfig(g.ConsulAddr()))
	if err != nil {
		return err
	}
	leader, err := anon.Status().Leader()
	if err != nil {
		return err
	}
	if leader == "" {
		return errors.New("no leader yet")
	}
	return nil
}

func (g *Grid) consulMembers(ctx context.Context) error {
	members, err := g.ConsulClient().Agent().Members(false)
	if err != nil {
		return err
	}
	alive := 0
	for _, m := range members {
		if m.Status == 1 {
			alive++
		}
	}
	if want := len(g.consulHosts()) + len(g.Servers); alive != want {
		return fmt.Errorf("%d of %d Consul agents alive", alive, want)
	}
	return nil
}

func (g *Grid) clientsReady(ctx context.Context) error {
	nodes, _, err := g.NomadClient().Nodes().List((&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return err
	}
	ready, edges := 0, 0
	for _, n := range nodes {
		if n.NodeClass == "edge" && n.Status == nomadapi.NodeStatusReady {
			edges++
			continue
		}
		if d, ok := n.Drivers["dyno"]; !ok || n.Status != nomadapi.NodeStatusReady || !d.Detected || !d.Healthy {
			continue
		}
		// A client fingerprints its Consul agent every 15 s: until it has, the scheduler
		// filters the node out for jobs with Consul services.
		node, _, err := g.NomadClient().Nodes().Info(n.ID, (&nomadapi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return err
		}
		if node.Attributes["consul.version"] != "" {
			ready++
		}
	}
	if ready != len(g.Hosts) {
		return fmt.Errorf("%d of %d Nomad clients ready with a healthy dyno driver and their Consul agent", ready, len(g.Hosts))
	}
	if g.routerJob && edges != len(g.Routers) {
		return fmt.Errorf("%d of %d edge Nomad clients ready", edges, len(g.Routers))
	}
	return nil
}

// wait polls ready every 200 ms until it succeeds or ctx ends.
func (g *Grid) wait(ctx context.Context, what string, ready func(context.Context) error) error {
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("multihost: %s not ready: %w (last: %v)", what, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// teardown kills every process of every host, unmounts what Nomad
// mounted, removes the hosts' cgroups, namespaces, the bridge and the data directory.
func (g *Grid) teardown() {
	t := g.t
	hosts := g.made
	if t.Failed() {
		for _, h := range hosts {
			for _, l := range h.logs {
				if strings.Contains(filepath.Base(l), "dyno-router") {
					t.Logf("multihost: last lines of %s but access lines:\n%s", l, lastLines(l, 30, func(line string) bool { return !strings.Contains(line, "dyno-router.access") }))
					continue
				}
				t.Logf("multihost: last lines of %s:\n%s", l, devgrid.Tail(l, 30))
			}
		}
		// Routers that run as Nomad jobs log into their allocations: their failed
		// requests say which dyno and why.
		logs, _ := filepath.Glob(filepath.Join(g.Dir, "*", "*", "alloc", "*", "alloc", "logs", "*router*.std*.[0-9]*"))
		for _, l := range logs {
			t.Logf("multihost: failed requests in %s:\n%s", l, lastLines(l, 30, func(line string) bool { return strings.Contains(line, "at=error") }))
		}
	}
	g.mu.Lock()
	for _, p := range g.procs {
		_ = p.cmd.Process.Kill()
	}
	g.mu.Unlock()
	for _, h := range hosts {
		if _, err := killNS(h.NS, 10*time.Second); err != nil {
			t.Errorf("multihost: %v", err)
		}
	}
	unmountBelow(g.Dir)
	if err := g.removeAllocNetworks(); err != nil {
		t.Errorf("multihost: %v", err)
	}
	for _, h := range hosts {
		for _, cg := range []string{h.CgroupParent, h.CgroupParent + "-nomad"} {
			if err := removeCgroupTree(cg); err != nil {
				t.Errorf("multihost: %v", err)
			}
		}
		// Deleting the root end of the veth pair removes both ends at once; the kernel
		// frees a deleted namespace's devices later, when the next grid may want the name.
		_, _ = ip("link", "del", h.Veth)
		if g.memcached {
			_, _ = ip("link", "del", addonVeth(h))
		}
		_, _ = ip("netns", "del", h.NS)
	}
	if g.Bridge != "" {
		_, _ = ip("link", "del", g.Bridge)
	}
	if err := os.RemoveAll(g.Dir); err != nil {
		t.Errorf("multihost: failed to remove %s: %v", g.Dir, err)
	}
}

// linkPlugins puts every Nomad plugin of binDir into pluginDir.
func linkPlugins(binDir, pluginDir string) error {
	if err := os.MkdirAll(pluginDir, 0o755); err != nil {
		return err
	}
	matches, err := filepath.Glob(filepath.Join(binDir, "nomad-driver-*"))
	if err != nil {
		return err
	}
	for _, m := range matches {
		abs, err := filepath.Abs(m)
		if err != nil {
			return err
		}
		if err := os.Symlink(abs, filepath.Join(pluginDir, filepath.Base(m))); err != nil {
			return fmt.Errorf("failed to install plugin %s: %w", filepath.Base(m), err)
		}
	}
	return nil
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }

// HTTPSClient is a client of the grid's HTTPS APIs, trusting its CA only.
func (g *Grid) HTTPSClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: g.ca.tlsConfig()}, Timeout: 10 * time.Second}
}

// httpClient sends the load: no keep-alive pool limits beyond the load's own.
var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// lastLines is the last n lines of the file at path for which keep is true.
func lastLines(path string, n int, keep func(line string) bool) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var kept []string
	for _, line := range strings.Split(string(b), "\n") {
		if keep(line) {
			kept = append(kept, line)
		}
	}
	if len(kept) > n {
		kept = kept[len(kept)-n:]
	}
	return strings.Join(kept, "\n")
}
