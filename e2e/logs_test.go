package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/router/logapi"
)

// requestLogger is put in front of the example app: it prints each request's id, as an
// app that tags its log lines with X-Request-Id does.
const requestLogger = `
class RequestIdLogger
  def initialize(app)
    @app = app
  end

  def call(env)
    puts "handled #{env["PATH_INFO"]}?#{env["QUERY_STRING"]} request_id=#{env["HTTP_X_REQUEST_ID"]}" unless env["PATH_INFO"] == "/health"
    @app.call(env)
  end
end
use RequestIdLogger
`

// deployRequestLogger deploys the example app as app, one web dyno that prints each
// request's id (requestLogger), and returns a CLI for app with the management token.
func deployRequestLogger(t *testing.T, g *devgrid.Grid, app string) *dynoCLI {
	t.Helper()
	dir := copyApp(t)
	writeSpec(t, dir, strings.Replace(webSpec(app, ""), "count        = 2", "count        = 1", 1))
	ru := filepath.Join(dir, "config.ru")
	src, err := os.ReadFile(ru)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ru, []byte(strings.Replace(string(src), "use QuietHealthLogger", requestLogger+"use QuietHealthLogger", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	admin := newCLI(t, g, app)
	admin.must("deploy", dir)
	return admin
}

// TestLogsTailShowsRouterLines follows an app with `dyno logs --tail` (the binary, with
// the app's deploy token), sends requests through the router, and sees each request's
// router line and the app's own line appear, request after request; then stops it with
// Ctrl-C. It then scales the app to web=0 (H14), and checks that the app's key opens
// only the app's router lines.
func TestLogsTailShowsRouterLines(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t, harness.WithRouter(t))
	consul, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	admin := deployRequestLogger(t, g, "tailed")
	passingDynos(t, consul, "tailed", 1, time.Minute)
	token := strings.TrimSpace(admin.must("apps:token"))
	logsAddr := "http://" + g.Options.RouterLogsAddr()

	tail := startTail(t, g, token, logsAddr, "tailed")
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("e2e-tail-request-%04d-0123456789", i)
		if status, body := routerGet(t, g, "tailed.localhost", fmt.Sprintf("/?n=%d", i), id); status != 200 {
			t.Fatalf("request %d through the router: %d %s", i, status, body)
		}
		app := fmt.Sprintf("web.1: handled /?n=%d request_id=%s", i, id)
		router := fmt.Sprintf(`path="/?n=%d" host=tailed.localhost request_id=%s`, i, id)
		testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("the app's and the router's line of request %d in dyno logs --tail", i), func() error {
			if tail.find("web.1: ", app) < 0 || tail.find("router: at=info method=GET ", router) < 0 {
				return fmt.Errorf("dyno logs --tail printed:\n%s", tail.text())
			}
			return nil
		})
	}
	// Each request's two lines come before the next request's.
	prev := -1
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("e2e-tail-request-%04d-0123456789", i)
		a, r := tail.find("web.1: handled", id), tail.find("router: ", "request_id="+id)
		if a <= prev || r <= prev {
			t.Fatalf("request %d's lines (app at line %d, router at %d) come before request %d's (at %d):\n%s", i, a, r, i-1, prev, tail.text())
		}
		prev = max(a, r)
	}
	tail.stop(t)
	t.Logf("dyno logs --tail printed:\n%s", tail.text())

	// Without --tail: the recent router lines, with their request ids.
	deployer := newCLI(t, g, "tailed")
	deployer.base = append(tokenArgs(deployer.base, token), "--router", logsAddr)
	out := deployer.must("logs", "--dyno", "router")
	if !strings.Contains(out, "router: at=info method=GET path=\"/?n=3\"") || strings.Contains(out, "web.1:") {
		t.Errorf("dyno logs --dyno router printed:\n%s\nwant the router lines only", out)
	}

	// Scaled to web=0 the app still exists: H14, in its router lines too.
	admin.must("ps:scale", "web=0")
	testutil.WaitFor(t, time.Minute, "H14 for the app scaled to web=0", func() error {
		if status, body := routerGet(t, g, "tailed.localhost", "/", ""); status != 503 || !strings.Contains(body, "H14") {
			return fmt.Errorf("got %d %q", status, body)
		}
		return nil
	})
	if out := deployer.must("logs"); !strings.Contains(out, `router: at=error code=H14 desc="No web dynos running"`) {
		t.Errorf("dyno logs after web=0 printed:\n%s\nwant the H14 line", out)
	}

	// Another app, "quiet": its own key (made by an operator's dyno logs). The deploy
	// token of tailed can read neither that key nor, with its own key, quiet's lines.
	registerEmptyApp(t, g, "quiet")
	newCLI(t, g, "quiet").must("logs", "--dyno", "router", "--router", logsAddr)
	other := newCLI(t, g, "quiet")
	other.base = append(tokenArgs(other.base, token), "--router", logsAddr)
	if code, out, errOut := other.run("logs"); code != 4 || !strings.Contains(errOut, "app-quiet-deploy") {
		t.Errorf("dyno logs --app quiet with tailed's token: exit %d, stdout %q, stderr %q; want exit 4 naming the policy it lacks", code, out, errOut)
	}
	tailedKey := readKey(t, g, "tailed")
	for _, c := range []struct {
		app, key string
		status   int
	}{
		{"quiet", tailedKey, 403},
		{"quiet", "", 401},
		{"quiet", readKey(t, g, "quiet"), 200},
		{"tailed", tailedKey, 200},
		{"tailed", strings.Repeat("0", 64), 403},
	} {
		req, _ := http.NewRequest(http.MethodGet, logsAddr+logapi.Path+c.app, nil)
		if c.key != "" {
			req.Header.Set("Authorization", "Bearer "+c.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("router lines of %s with key %.8q: %d %s, want %d", c.app, c.key, resp.StatusCode, body, c.status)
		}
	}
}

// tokenArgs replaces the --nomad-token of a CLI's base arguments.
func tokenArgs(base []string, token string) []string {
	out := append([]string(nil), base...)
	for i, a := range out {
		if a == "--nomad-token" {
			out[i+1] = token
		}
	}
	return out
}

// routerGet sends GET path to the grid's router with Host host (and X-Request-Id id).
func routerGet(t *testing.T, g *devgrid.Grid, host, path, id string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+g.Options.RouterAddr()+path, nil)
	req.Host = host
	if id != "" {
		req.Header.Set("X-Request-Id", id)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s through the router: %v", host, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// registerEmptyApp makes app a tenant with a job that runs no dyno.
func registerEmptyApp(t *testing.T, g *devgrid.Grid, app string) {
	t.Helper()
	newCLI(t, g, app).must("apps:token")
	job := nomadapi.NewServiceJob(app, app, "global", 50)
	job.Namespace = ptr(app)
	job.Datacenters = []string{"*"}
	task := nomadapi.NewTask("web", "dyno")
	task.Config = map[string]any{"command": "/bin/true"}
	job.AddTaskGroup(nomadapi.NewTaskGroup("web", 0).AddTask(task))
	if _, _, err := appNomad(t, g, app).Jobs().Register(job, nil); err != nil {
		t.Fatalf("failed to register the job of %s: %v", app, err)
	}
}

func readKey(t *testing.T, g *devgrid.Grid, app string) string {
	t.Helper()
	v, _, err := appNomad(t, g, app).Variables().Read(logapi.KeyPath, nil)
	if err != nil {
		t.Fatalf("the router log key of %s: %v", app, err)
	}
	return v.Items[logapi.KeyItem]
}

// tailProcess is a running `dyno logs --tail` and the lines it printed.
type tailProcess struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan error
}

func startTail(t *testing.T, g *devgrid.Grid, token, logsAddr, app string) *tailProcess {
	t.Helper()
	cmd := exec.Command(filepath.Join(harness.BinDir(t), "dyno"), "logs", "--tail", "--app", app,
		"--nomad-addr", "http://"+g.Options.NomadAddr(), "--nomad-token", token, "--router", logsAddr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &tailProcess{cmd: cmd, done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("dyno logs --tail stderr:\n%s", stderr.String())
		}
	})
	return p
}

// find returns the index of the first line that starts with prefix and holds part, or -1.
func (p *tailProcess) find(prefix, part string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, l := range p.lines {
		if strings.HasPrefix(l, prefix) && strings.Contains(l, part) {
			return i
		}
	}
	return -1
}

func (p *tailProcess) text() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// stop sends Ctrl-C (SIGINT) and expects dyno logs to exit 0 within 10 s.
func (p *tailProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("dyno logs --tail after Ctrl-C: %v, want exit 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dyno logs --tail did not stop within 10s of Ctrl-C")
	}
}
