package addons

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/dynogrid/dynogrid/internal/deploy"
	nomadapi "github.com/hashicorp/nomad/api"
)

// fakeNomad is the part of Nomad's HTTP API that the add-on manager and the deployer
// use for an app with no processes: one job, its releases, and Nomad Variables. A
// release it registers is healthy at once.
type fakeNomad struct {
	t *testing.T

	mu       sync.Mutex
	job      *nomadapi.Job // nil: no app
	vars     map[string]nomadapi.VariableItems
	releases []string // the description of each release registered
	index    uint64
}

// newFakeNomad returns a Nomad where app "shop" runs its release v1 with env, and a
// client of it.
func newFakeNomad(t *testing.T, env map[string]string) (*fakeNomad, *nomadapi.Client) {
	t.Helper()
	f := &fakeNomad{t: t, vars: map[string]nomadapi.VariableItems{}, index: 10}
	envPath := deploy.EnvPath("shop", env)
	if envPath != "" {
		f.vars[envPath] = env
	}
	f.job = &nomadapi.Job{ID: new("shop"), Name: new("shop"), JobModifyIndex: new(uint64(10)),
		Meta: map[string]string{deploy.MetaApp: "shop", deploy.MetaRelease: "v1", deploy.MetaEnv: envPath}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	c, err := nomadapi.NewClient(&nomadapi.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func (f *fakeNomad) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("X-Nomad-Index", "10")
	answer := func(v any) { _ = json.NewEncoder(w).Encode(v) }
	varPath, isVar := strings.CutPrefix(r.URL.Path, "/v1/var/")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/job/shop" && f.job != nil:
		answer(f.job)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/job/shop/versions" && f.job != nil:
		answer(nomadapi.JobVersionsResponse{Versions: []*nomadapi.Job{f.job}})
	case r.Method == http.MethodGet && r.URL.Path == "/v1/job/shop/deployment":
		answer(nil)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/job/shop/evaluations":
		answer([]*nomadapi.Evaluation{})
	case r.Method == http.MethodGet && r.URL.Path == "/v1/jobs": // the app's schedules: none
		answer([]*nomadapi.JobListStub{})
	case r.Method == http.MethodPut && r.URL.Path == "/v1/jobs":
		var req nomadapi.JobRegisterRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Job == nil || *req.Job.ID != "shop" {
			http.Error(w, "bad job", http.StatusBadRequest)
			return
		}
		f.index++
		req.Job.JobModifyIndex = new(f.index)
		f.job = req.Job
		f.releases = append(f.releases, req.Job.Meta[deploy.MetaDescription])
		answer(nomadapi.JobRegisterResponse{JobModifyIndex: f.index})
	case r.Method == http.MethodGet && r.URL.Path == "/v1/vars":
		prefix := r.URL.Query().Get("prefix")
		out := []*nomadapi.VariableMetadata{}
		for _, p := range f.sortedVars() {
			if strings.HasPrefix(p, prefix) {
				out = append(out, &nomadapi.VariableMetadata{Path: p})
			}
		}
		answer(out)
	case r.Method == http.MethodGet && isVar && f.vars[varPath] != nil:
		answer(nomadapi.Variable{Path: varPath, Items: f.vars[varPath]})
	case r.Method == http.MethodPut && isVar:
		var v nomadapi.Variable
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.vars[varPath] = v.Items
		answer(v)
	case r.Method == http.MethodDelete && isVar:
		delete(f.vars, varPath)
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodGet:
		http.Error(w, "not found", http.StatusNotFound)
	default:
		f.t.Errorf("fake nomad: unexpected %s %s", r.Method, r.URL)
		http.Error(w, "unexpected", http.StatusInternalServerError)
	}
}

func (f *fakeNomad) sortedVars() []string {
	out := make([]string, 0, len(f.vars))
	for p := range f.vars {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// env returns the environment of the app's current release.
func (f *fakeNomad) env() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for k, v := range f.vars[f.job.Meta[deploy.MetaEnv]] {
		out[k] = v
	}
	return out
}

// released returns the descriptions of the releases made so far.
func (f *fakeNomad) released() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{}, f.releases...)
}

// attachments returns the paths of the app's attachment variables.
func (f *fakeNomad) attachments() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.sortedVars() {
		if strings.HasPrefix(p, "nomad/jobs/shop/addons/") {
			out = append(out, p)
		}
	}
	return out
}
