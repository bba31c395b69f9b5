package addonhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/hashicorp/go-hclog"
	"github.com/shoenig/test/must"

	"github.com/dynogrid/dynogrid/plugins/addon"
)

var testBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "addonhost-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testBinary = filepath.Join(dir, "testaddon")
	cmd := exec.Command("go", "build", "-o", testBinary, "./internal/testaddon")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "failed to build the test add-on:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// newHost returns a host whose plugin directory holds the test add-on under the given
// modes' names, and its state directory.
func newHost(t *testing.T, modes ...string) (*Host, string) {
	t.Helper()
	pluginDir, stateDir := t.TempDir(), t.TempDir()
	for _, m := range modes {
		must.NoError(t, os.Link(testBinary, filepath.Join(pluginDir, addon.BinaryPrefix+m)))
	}
	h, err := New(Options{
		PluginDir: pluginDir, StateDir: stateDir,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn, Output: testWriter{t}}),
		StartTimeout:     5 * time.Second,
		CallTimeout:      5 * time.Second,
		ProvisionTimeout: 5 * time.Second,
	})
	must.NoError(t, err)
	return h, stateDir
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func provisionReq(id string) addon.ProvisionRequest {
	return addon.ProvisionRequest{RequestID: id, App: "shop", Name: "TEST"}
}

func TestHost_ListFindsOnlyAddons(t *testing.T) {
	t.Parallel()
	h, _ := newHost(t, "good", "hang")
	dir := h.PluginDir()
	must.NoError(t, os.WriteFile(filepath.Join(dir, "dyno-addon-notexec"), []byte("x"), 0o644))
	must.NoError(t, os.WriteFile(filepath.Join(dir, "dyno-addon-Bad_Name"), []byte("x"), 0o755))
	must.NoError(t, os.WriteFile(filepath.Join(dir, "README"), []byte("x"), 0o755))
	names, err := h.List()
	must.NoError(t, err)
	must.Eq(t, []string{"good", "hang"}, names)
}

func TestHost_ProvisionIsIdempotentAndDeprovisions(t *testing.T) {
	t.Parallel()
	h, stateDir := newHost(t, "good")
	ctx := context.Background()

	d, err := h.Describe(ctx, "good")
	must.NoError(t, err)
	must.Eq(t, []string{"TEST_URL", "TEST_TOKEN"}, d.EnvVars)

	r1, err := h.Provision(ctx, "good", provisionReq("req-1"))
	must.NoError(t, err)
	must.Eq(t, "res-req-1", r1.ID)
	must.Eq(t, "test://shop/small", r1.Env["TEST_URL"], must.Sprint("the default plan is used"))
	r2, err := h.Provision(ctx, "good", provisionReq("req-1"))
	must.NoError(t, err)
	must.Eq(t, r1, r2, must.Sprint("a retry with the same request ID gives the same resource"))
	entries, _ := os.ReadDir(filepath.Join(stateDir, "good"))
	must.Len(t, 1, entries, must.Sprint("one resource made"))

	req := addon.DeprovisionRequest{RequestID: "del-1", ResourceID: r1.ID, App: "shop"}
	must.NoError(t, h.Deprovision(ctx, "good", req))
	must.NoError(t, h.Deprovision(ctx, "good", req), must.Sprint("deprovision is idempotent"))
	entries, _ = os.ReadDir(filepath.Join(stateDir, "good"))
	must.Len(t, 0, entries)
}

func TestHost_Failures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		mode    string
		kind    Kind
		op      string
		message string
	}{
		{"missing", KindNotFound, "find", "no plugin dyno-addon-missing"},
		{"garbage", KindStart, "start", "not a Dynogrid add-on plugin"},
		{"wrongproto", KindStart, "start", "another add-on protocol version"},
		{"slowstart", KindStart, "start", "handshake"},
		{"refuse", KindRejected, "configure", `setting "admin_url" is required`},
		{"baddescribe", KindInvalidAnswer, "describe", "no plans"},
		{"impostor", KindInvalidAnswer, "describe", `calls itself "postgres"`},
		{"hang", KindTimeout, "provision", "did not answer within"},
		{"crash", KindCrashed, "provision", "boom: out of cheese"},
		{"badname", KindInvalidAnswer, "provision", `variable name "test_url"`},
		{"undeclared", KindInvalidAnswer, "provision", "LD_PRELOAD"},
		{"newline", KindInvalidAnswer, "provision", "line break"},
		{"empty", KindInvalidAnswer, "provision", "empty resource ID"},
		{"loud", KindRejected, "provision", "fake: Error: line"},
	}
	modes := make([]string, 0, len(cases))
	for _, c := range cases {
		if c.mode != "missing" {
			modes = append(modes, c.mode)
		}
	}
	h, _ := newHost(t, modes...)
	h.opts.StartTimeout = 2 * time.Second
	h.opts.ProvisionTimeout = 2 * time.Second
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			_, err := h.Provision(context.Background(), c.mode, provisionReq("req-1"))
			must.Error(t, err)
			t.Logf("error after %s: %v", time.Since(start).Round(time.Millisecond), err)
			var e *Error
			must.True(t, errors.As(err, &e), must.Sprintf("error is an *Error: %T", err))
			must.Eq(t, c.kind, e.Kind, must.Sprintf("kind of %v", err))
			must.Eq(t, c.op, e.Op)
			must.StrContains(t, err.Error(), `add-on "`+c.mode+`"`)
			must.StrContains(t, err.Error(), c.message)
			must.Less(t, 15*time.Second, time.Since(start), must.Sprint("bounded by the deadlines"))
			for _, r := range err.Error() {
				must.False(t, unicode.IsControl(r), must.Sprintf("control character %U in %q", r, err.Error()))
			}
		})
	}
}

// TestHost_PluginMessageIsOneBoundedLine: a plugin's error message reaches the user as
// a Resource.Message does, one printable line of at most addon.MaxMessage bytes, its
// terminal escapes made visible, however large and hostile it was.
func TestHost_PluginMessageIsOneBoundedLine(t *testing.T) {
	t.Parallel()
	h, _ := newHost(t, "loud")
	_, err := h.Provision(context.Background(), "loud", provisionReq("req-1"))
	var e *Error
	must.True(t, errors.As(err, &e), must.Sprintf("error is an *Error: %T %v", err, err))
	must.Eq(t, KindRejected, e.Kind)
	msg := e.Err.Error()
	must.Eq(t, addon.MaxMessage, len(msg), must.Sprint("cut at the limit"))
	must.StrHasPrefix(t, `\x1b]52;c;ZXZpbA==\x07\x1b[2J  fake: Error: linexxx`, msg)
	must.StrHasSuffix(t, "xxx…", msg)
	must.Eq(t, `add-on "loud": provision: rejected: `+msg, err.Error())
}

func TestHost_CallerDeadline(t *testing.T) {
	t.Parallel()
	h, _ := newHost(t, "hang")
	p, err := h.Open(context.Background(), "hang")
	must.NoError(t, err)
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = p.Provision(ctx, provisionReq("req-1"))
	must.Eq(t, KindTimeout, KindOf(err), must.Sprintf("error: %v", err))
	must.True(t, Retryable(err))
	must.Less(t, 3*time.Second, time.Since(start))
	// The plugin was stopped: a second call fails at once with a clear error.
	_, err = p.Provision(context.Background(), provisionReq("req-1"))
	must.ErrorContains(t, err, "stopped after an earlier failure")
}

func TestHost_PluginKilledMidCall(t *testing.T) {
	t.Parallel()
	h, stateDir := newHost(t, "killme")
	p, err := h.Open(context.Background(), "killme")
	must.NoError(t, err)
	defer p.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := p.Provision(context.Background(), provisionReq("req-1"))
		errc <- err
	}()
	pidFile := filepath.Join(stateDir, "killme", "pid")
	var pid int
	deadline := time.Now().Add(5 * time.Second)
	for pid == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the plugin never started the call")
		}
		if b, err := os.ReadFile(pidFile); err == nil && len(b) > 0 {
			pid, _ = strconv.Atoi(string(b))
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	must.Eq(t, p.Pid(), pid, must.Sprint("the PID the host knows is the plugin's"))
	must.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	select {
	case err := <-errc:
		must.Eq(t, KindCrashed, KindOf(err), must.Sprintf("error: %v", err))
		must.StrContains(t, err.Error(), `add-on "killme": provision: crashed`)
		must.StrContains(t, err.Error(), "killed")
		must.True(t, Retryable(err))
	case <-time.After(30 * time.Second):
		t.Fatal("the call did not return after the plugin was killed")
	}
}

func TestHost_InvalidRequestsAreNotSent(t *testing.T) {
	t.Parallel()
	h, _ := newHost(t, "good")
	p, err := h.Open(context.Background(), "good")
	must.NoError(t, err)
	defer p.Close()
	cases := []struct {
		name string
		req  addon.ProvisionRequest
		want string
	}{
		{"empty request ID", addon.ProvisionRequest{App: "shop"}, "request ID"},
		{"bad app", addon.ProvisionRequest{RequestID: "r", App: "Shop!"}, "app name"},
		{"unknown plan", addon.ProvisionRequest{RequestID: "r", App: "shop", Plan: "huge"}, `no plan "huge" (plans: small, large)`},
	}
	for _, c := range cases {
		_, err := p.Provision(context.Background(), c.req)
		must.Eq(t, KindInvalidRequest, KindOf(err), must.Sprintf("%s: %v", c.name, err))
		must.StrContains(t, err.Error(), c.want)
	}
	_, err = h.Open(context.Background(), "../../bin/sh")
	must.Eq(t, KindInvalidRequest, KindOf(err))
}

func TestHost_CallerGivesUpDuringStart(t *testing.T) {
	t.Parallel()
	h, _ := newHost(t, "slowstart")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := h.Open(ctx, "slowstart")
	must.Eq(t, KindTimeout, KindOf(err), must.Sprintf("error: %v", err))
	must.StrContains(t, err.Error(), "gave up during the start")
	must.Less(t, 4*time.Second, time.Since(start))
}

func TestHost_CloseStopsWhatThePluginLeftBehind(t *testing.T) {
	t.Parallel()
	h, stateDir := newHost(t, "forker")
	p, err := h.Open(context.Background(), "forker")
	must.NoError(t, err)
	_, err = p.Provision(context.Background(), provisionReq("req-1"))
	must.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(stateDir, "forker", "child"))
	must.NoError(t, err)
	child, _ := strconv.Atoi(string(b))
	start := time.Now()
	p.Close()
	must.Less(t, 10*time.Second, time.Since(start), must.Sprint("Close returns although a child holds the plugin's stderr"))
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(child, 0) == nil && !zombie(child) {
		must.True(t, time.Now().Before(deadline), must.Sprintf("the plugin's child %d still runs", child))
		time.Sleep(20 * time.Millisecond)
	}
}

func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

func TestHost_PluginGetsNoSecretsFromTheHostEnvironment(t *testing.T) {
	t.Setenv("NOMAD_TOKEN", "operator-secret")
	t.Setenv("TZ", "UTC")
	h, _ := newHost(t, "env")
	r, err := h.Provision(context.Background(), "env", provisionReq("req-1"))
	must.NoError(t, err)
	seen := r.Env["TEST_TOKEN"]
	must.StrContains(t, seen, "PATH")
	must.StrContains(t, seen, "TZ")
	must.False(t, strings.Contains(seen, "NOMAD_TOKEN"), must.Sprintf("the plugin saw %s", seen))
}
