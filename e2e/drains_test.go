package e2e

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/apierr"
	"github.com/dynogrid/dynogrid/internal/cli"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/drain"
	"github.com/dynogrid/dynogrid/internal/drain/draintest"
	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/policies"
)

// TestDrainsShipRouterAndDynoLines adds three drains to an app with its deploy token: an
// rsyslogd over syslog://, an HTTPS server, and a syslog drain where nothing listens.
// Requests through the router reach the first two as router lines and as the dyno's own
// lines, in order per source; the third drops lines past its buffer, counted in `dyno
// drains` and the shipper's metric, while the app keeps answering. A one-off dyno's
// output, done before the shipper looks again, is shipped too. Bad URLs are refused,
// another app's token can neither read nor change the drains, and the shipper's own token
// reads nothing else and changes nothing but the drains' status.
func TestDrainsShipRouterAndDynoLines(t *testing.T) {
	t.Parallel()
	testutil.E2E(t, "runs Debian's rsyslogd", testutil.Program("rsyslogd"))
	https := newLogplexServer(t)
	metricsPort := harness.FreePorts(t, 1)
	downPort := harness.FreePorts(t, 1)
	g := harness.Grid(t, harness.WithRouter(t), func(o *devgrid.Options) {
		o.LogDrain = devgrid.LogDrainOptions{AllowNets: "127.0.0.0/8", CAFile: https.caFile, MetricsPort: metricsPort, BufferBytes: 64 << 10}
	})
	consul, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	rs := draintest.StartRsyslog(t, t.TempDir(), 0, nil)

	admin := deployRequestLogger(t, g, "drained")
	passingDynos(t, consul, "drained", 1, time.Minute)
	token := strings.TrimSpace(admin.must("apps:token"))
	owner := newCLI(t, g, "drained")
	owner.base = tokenArgs(owner.base, token)

	// Bad URLs: refused with the reason, nothing added.
	for raw, want := range map[string]string{
		"ftp://logs.example.com/":                               `scheme "ftp" is not supported`,
		"syslog://logs.example.com":                             "no port",
		"https://logs.example.com/" + strings.Repeat("a", 1100): "at most 1024",
	} {
		if code, _, errOut := owner.run("drains:add", raw); code == 0 || !strings.Contains(errOut, want) {
			t.Errorf("drains:add %.40q: exit %d, stderr %q; want a failure saying %q", raw, code, errOut, want)
		}
	}
	syslogURL, httpsURL, downURL := "syslog://"+rs.Addr(), https.url+"/drain", fmt.Sprintf("syslog://127.0.0.1:%d", downPort)
	for _, u := range []string{syslogURL, httpsURL, downURL} {
		owner.must("drains:add", u)
	}
	if code, _, errOut := owner.run("drains:add", syslogURL); code == 0 || !strings.Contains(errOut, "already drains to") {
		t.Errorf("adding a drain twice: exit %d, stderr %q", code, errOut)
	}
	drains := readDrains(t, owner)
	if len(drains) != 3 {
		t.Fatalf("dyno drains lists %+v: want the 3 drains added", drains)
	}
	tokens := map[string]string{}
	for _, d := range drains {
		tokens[d.URL] = d.Token
	}

	// Another app's deploy token reads nothing and changes nothing.
	registerEmptyApp(t, g, "intruder")
	intruder := newCLI(t, g, "drained")
	intruder.base = tokenArgs(intruder.base, strings.TrimSpace(newCLI(t, g, "intruder").must("apps:token")))
	for _, args := range [][]string{{"drains"}, {"drains:add", "syslog://203.0.113.7:514"}, {"drains:remove", syslogURL}} {
		if code, out, errOut := intruder.run(args[0], args[1:]...); code != 4 || strings.Contains(out+errOut, rs.Addr()) || !strings.Contains(errOut, "app-drained-deploy") {
			t.Errorf("dyno %s for drained with intruder's token: exit %d, stdout %q, stderr %q; want exit 4 naming the policy it lacks", args, code, out, errOut)
		}
	}
	if after := readDrains(t, owner); len(after) != 3 {
		t.Fatalf("after the intruder's attempts: %+v, want the 3 drains unchanged", after)
	}

	// The shipper picks the drains up and says so in their status. Polled with one
	// client: a CLI run each time would open new connections faster than Nomad allows.
	nomad := appNomad(t, g, "drained")
	testutil.WaitFor(t, time.Minute, "the shipper's status of each drain", func() error {
		st, err := drain.ReadStatus(context.Background(), nomad, "drained")
		if err != nil {
			return err
		}
		for _, d := range drains {
			if _, ok := st[d.Token]; !ok {
				return fmt.Errorf("no status yet for %s", d.URL)
			}
		}
		return nil
	})
	// Lines reach the drains once the shipper follows the dyno and the router: wait for
	// a request's two lines.
	testutil.WaitFor(t, time.Minute, "a first request's lines at rsyslogd", func() error {
		id := fmt.Sprintf("e2e-drain-warmup-%d-0123456789", time.Now().UnixNano())
		if status, body := routerGet(t, g, "drained.localhost", "/?warmup=1", id); status != 200 {
			return fmt.Errorf("warm-up request: %d %s", status, body)
		}
		got := strings.Join(rs.Lines(t), "\n")
		if !strings.Contains(got, " router ") || !strings.Contains(got, " app web.1 handled /?warmup=1") {
			return fmt.Errorf("rsyslogd has:\n%s", got)
		}
		return nil
	})

	// The requests go in rounds, each once the live drains have the lines of those
	// before: the drains' buffers (BufferBytes) hold a round's lines with room to spare
	// however slow the machine, and the drain that is down gets more than its buffer.
	const n, round = 150, 25
	syslogToken, httpsToken, downToken := tokens[syslogURL], tokens[httpsURL], tokens[downURL]
	checkDrained := func(name string, lines func() []string, tok string, sent int) {
		testutil.WaitFor(t, time.Minute, fmt.Sprintf("the first %d requests' two lines at %s", sent, name), func() error {
			return requestsInOrder(lines(), tok, sent)
		})
	}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("e2e-drain-request-%04d-0123456789", i)
		if status, body := routerGet(t, g, "drained.localhost", fmt.Sprintf("/?n=%d", i), id); status != 200 {
			t.Fatalf("request %d with a drain down: %d %s (the app must keep serving)", i, status, body)
		}
		if i%round == 0 {
			checkDrained("rsyslogd", func() []string { return rs.Lines(t) }, syslogToken, i)
			checkDrained("the HTTPS drain", https.lines, httpsToken, i)
		}
	}

	// A one-off dyno that ends before the shipper looks for dynos again is shipped too.
	out := owner.must("run:detached", "--", "echo one-off-to-the-drain as $DYNO")
	m := regexp.MustCompile(`up, (run\.\d{4})\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("run:detached said:\n%s", out)
	}
	testutil.WaitFor(t, time.Minute, "the one-off dyno's line at rsyslogd", func() error {
		if got := strings.Join(rs.Lines(t), "\n"); !strings.Contains(got, " app "+m[1]+" one-off-to-the-drain as "+m[1]) {
			return fmt.Errorf("rsyslogd has:\n%s", got)
		}
		return nil
	})

	// The drain that is down dropped lines, and says how many.
	testutil.WaitFor(t, time.Minute, "the shipper to count the dropped lines", func() error {
		st, err := drain.ReadStatus(context.Background(), nomad, "drained")
		if err != nil {
			return err
		}
		if down := st[downToken]; down.Dropped == 0 || !strings.Contains(down.Error, "failed to connect") {
			return fmt.Errorf("status of the down drain: %+v", down)
		}
		return nil
	})
	for _, d := range readDrains(t, owner) {
		if d.Token == downToken && (d.Status == nil || d.Status.Dropped == 0) {
			t.Errorf("dyno drains --json shows the down drain as %+v: want its dropped count", d)
		}
	}
	if text := owner.must("drains"); !regexp.MustCompile(regexp.QuoteMeta(downURL+" ("+downToken+")") + `\n  sent 0, dropped [1-9]\d*, buffered \d+ .*; last error: failed to connect`).MatchString(text) {
		t.Errorf("dyno drains printed:\n%s\nwant the down drain's dropped count and error", text)
	}
	metric := regexp.MustCompile(`dynogrid_logdrain_dropped_lines_total\{app="drained",drain="` + regexp.QuoteMeta(downToken) + `"\} (\d+)`)
	testutil.WaitFor(t, 30*time.Second, "the dropped lines in the shipper's metrics", func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := metric.FindSubmatch(b)
		if m == nil {
			return fmt.Errorf("no dropped count for the down drain in:\n%s", b)
		}
		if v, _ := strconv.Atoi(string(m[1])); v == 0 {
			return fmt.Errorf("dropped count 0")
		}
		return nil
	})

	owner.must("drains:remove", downURL)
	if left := readDrains(t, owner); len(left) != 2 {
		t.Errorf("after drains:remove: %+v, want 2 drains", left)
	}
	// At most 5 drains. (Nothing listens on these ports: their senders only fail.)
	first := harness.FreePorts(t, 4)
	for i := 0; i < 3; i++ {
		owner.must("drains:add", fmt.Sprintf("syslog://127.0.0.1:%d", first+i))
	}
	if code, _, errOut := owner.run("drains:add", fmt.Sprintf("syslog://127.0.0.1:%d", first+3)); code == 0 || !strings.Contains(errOut, "at most 5") {
		t.Errorf("a sixth drain: exit %d, stderr %q; want it refused, naming the limit", code, errOut)
	}

	shipperTokenStaysInItsLane(t, g, nomad)
}

// shipperTokenStaysInItsLane checks that the shipper's token reads an app's drains but
// not its config vars, and changes neither drains nor jobs.
func shipperTokenStaysInItsLane(t *testing.T, g *devgrid.Grid, mgmt *nomadapi.Client) {
	t.Helper()
	c, err := g.NomadClient()
	if err != nil {
		t.Fatal(err)
	}
	c.SetSecretID(harness.Tokens(t, g).Nomad[policies.NomadLogDrain])
	c.SetNamespace("drained")
	if _, err := drain.List(context.Background(), c, "drained"); err != nil {
		t.Fatalf("the shipper's token cannot read the app's drains: %v", err)
	}
	// A config var as the deployer keeps it, in the app's namespace.
	secret := &nomadapi.Variable{Namespace: "drained", Path: "nomad/jobs/drained/env/e2e", Items: nomadapi.VariableItems{"DATABASE_URL": "postgres://secret"}}
	if _, _, err := mgmt.Variables().Update(secret, nil); err != nil {
		t.Fatal(err)
	}
	var v nomadapi.Variable
	if _, err := c.Raw().Query("/v1/var/"+secret.Path, &v, nil); !apierr.IsStatus(err, http.StatusForbidden) {
		t.Errorf("the shipper's token reading the app's config %s: %v, %v; want 403", secret.Path, v.Items, err)
	}
	if listed, _, err := c.Variables().PrefixList("nomad/jobs/", nil); err == nil && len(listed) > 0 {
		t.Errorf("the shipper's token lists config variables: %+v", listed)
	}
	if _, _, err := c.Variables().Update(&nomadapi.Variable{Path: drain.Path, Items: nomadapi.VariableItems{"d.x": "syslog://127.0.0.1:9"}}, nil); !apierr.IsStatus(err, http.StatusForbidden) {
		t.Errorf("the shipper's token writing the app's drains: %v, want 403", err)
	}
	if _, _, err := c.Jobs().Deregister("drained", false, nil); !apierr.IsStatus(err, http.StatusForbidden) {
		t.Errorf("the shipper's token stopping the app's job: %v, want 403", err)
	}
}

func readDrains(t *testing.T, c *dynoCLI) []cli.DrainInfo {
	t.Helper()
	var out []cli.DrainInfo
	if err := json.Unmarshal([]byte(c.must("drains", "--json")), &out); err != nil {
		t.Fatalf("dyno drains --json: %v", err)
	}
	return out
}

var requestLine = regexp.MustCompile(`request_id=e2e-drain-request-(\d{4})-`)

// requestsInOrder checks that lines ("HOST APP-NAME PROCID MSG") hold, from the router
// and from web.1, the lines of requests 1 to n in order, with the drain's token.
func requestsInOrder(lines []string, token string, n int) error {
	next := map[string]int{"router": 1, "web.1": 1}
	for _, l := range lines {
		m := requestLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		f := strings.SplitN(l, " ", 4)
		if len(f) < 4 || f[0] != token {
			return fmt.Errorf("line %q: want the drain's token %s first", l, token)
		}
		proc := f[2]
		if want := map[string]string{"router": "heroku", "web.1": "app"}[proc]; f[1] != want {
			return fmt.Errorf("line %q: app-name %q for procid %q, want %q", l, f[1], proc, want)
		}
		i, _ := strconv.Atoi(m[1])
		if i != next[proc] {
			return fmt.Errorf("line %q: request %d from %s, want request %d next", l, i, proc, next[proc])
		}
		next[proc]++
	}
	if next["router"] != n+1 || next["web.1"] != n+1 {
		return fmt.Errorf("%d router and %d web.1 request lines so far, want %d of each", next["router"]-1, next["web.1"]-1, n)
	}
	return nil
}

// logplexServer is an HTTPS drain: it keeps each message it is posted, as "HOST
// APP-NAME PROCID MSG", and rejects posts that are not Heroku's format.
type logplexServer struct {
	url, caFile string
	mu          sync.Mutex
	got         []string
}

func newLogplexServer(t *testing.T) *logplexServer {
	s := &logplexServer{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		var msgs []string
		for len(body) > 0 {
			sp := strings.IndexByte(string(body), ' ')
			size, err := strconv.Atoi(string(body[:max(sp, 0)]))
			if sp < 0 || err != nil || size > len(body)-sp-1 {
				http.Error(w, "bad frame", http.StatusBadRequest)
				return
			}
			f := strings.SplitN(string(body[sp+1:sp+1+size]), " ", 8)
			if len(f) < 8 {
				http.Error(w, "bad message", http.StatusBadRequest)
				return
			}
			msgs = append(msgs, strings.Join([]string{f[2], f[3], f[4], f[7]}, " "))
			body = body[sp+1+size:]
		}
		if r.Header.Get("Content-Type") != "application/logplex-1" || r.Header.Get("Logplex-Msg-Count") != strconv.Itoa(len(msgs)) {
			http.Error(w, "not a logplex post", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.got = append(s.got, msgs...)
		s.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	s.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(s.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *logplexServer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}
