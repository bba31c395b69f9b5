package router

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
)

// fakeConsul answers the few calls of a cluster heartbeat; registering the router's
// service is forbidden when denyRegister is set, as with an ACL token without
// service:write on dyno-router.
type fakeConsul struct {
	denyRegister bool

	mu         sync.Mutex
	registered bool
	sessions   []map[string]any // session create bodies
	calls      []string
}

func (f *fakeConsul) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, req.Method+" "+req.URL.Path)
	switch {
	case strings.HasPrefix(req.URL.Path, "/v1/agent/check/update/"):
		if !f.registered {
			http.Error(w, "CheckID does not have associated TTL", http.StatusNotFound)
		}
	case req.URL.Path == "/v1/agent/service/register":
		if f.denyRegister {
			http.Error(w, "Permission denied", http.StatusForbidden)
			return
		}
		f.registered = true
	case req.URL.Path == "/v1/session/create":
		var body map[string]any
		_ = json.NewDecoder(req.Body).Decode(&body)
		f.sessions = append(f.sessions, body)
		_ = json.NewEncoder(w).Encode(map[string]string{"ID": "sess-1"})
	case strings.HasPrefix(req.URL.Path, "/v1/kv/"):
		_, _ = w.Write([]byte("true"))
	default:
		http.Error(w, "unexpected", http.StatusInternalServerError)
	}
}

func heartbeatAgainst(t *testing.T, f *fakeConsul) *cluster {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg := DefaultConfig()
	cfg.Logger = hclog.NewNullLogger()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client, err := consulapi.NewClient(&consulapi.Config{Address: strings.TrimPrefix(srv.URL, "http://")})
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(r, client)
	ctx := context.Background()
	// The first beat registers the router (its check is unknown), the second joins.
	for i := 0; i < 2 && c.session == ""; i++ {
		_ = c.heartbeat(ctx)
	}
	return c
}

func TestClusterSessionTiedToRouterCheck(t *testing.T) {
	t.Parallel()
	f := &fakeConsul{}
	c := heartbeatAgainst(t, f)
	if c.session != "sess-1" || c.noCheck.Load() {
		t.Fatalf("session %q, noCheck %v; calls %v", c.session, c.noCheck.Load(), f.calls)
	}
	body := f.sessions[len(f.sessions)-1]
	checks, _ := json.Marshal(body["ServiceChecks"])
	if !strings.Contains(string(checks), c.checkID()) {
		t.Errorf("session service checks %s, want the router's check %s", checks, c.checkID())
	}
	if nc, _ := json.Marshal(body["NodeChecks"]); string(nc) != `["serfHealth"]` {
		t.Errorf("session node checks %s, want serfHealth", nc)
	}
}

func TestClusterJoinsWithoutRegisterPermission(t *testing.T) {
	t.Parallel()
	f := &fakeConsul{denyRegister: true}
	c := heartbeatAgainst(t, f)
	if c.session != "sess-1" || !c.noCheck.Load() {
		t.Fatalf("session %q, noCheck %v; calls %v", c.session, c.noCheck.Load(), f.calls)
	}
	body := f.sessions[len(f.sessions)-1]
	if _, ok := body["ServiceChecks"]; ok {
		t.Errorf("session tied to a check the router could not register: %v", body)
	}
}
