package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/appspec"
)

// fakeNomad answers the reads of a deployed app "shop" whose environment is env, and
// records every other request: a write the limits should have prevented.
func fakeNomad(t *testing.T, env map[string]string) (*nomadapi.Client, func() []string) {
	t.Helper()
	return fakeNomadWith(t, env, nil)
}

// fakeNomadWith is fakeNomad for an app whose job has the task groups given.
func fakeNomadWith(t *testing.T, env map[string]string, groups []*nomadapi.TaskGroup) (*nomadapi.Client, func() []string) {
	t.Helper()
	envPath := EnvPath("shop", env)
	job := &nomadapi.Job{ID: ptr("shop"), Name: ptr("shop"), JobModifyIndex: ptr(uint64(7)), TaskGroups: groups,
		Meta: map[string]string{MetaApp: "shop", MetaRelease: "v3", MetaEnv: envPath}}
	var mu sync.Mutex
	var writes []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body any
		switch {
		case r.Method != http.MethodGet:
			mu.Lock()
			writes = append(writes, r.Method+" "+r.URL.Path)
			mu.Unlock()
			http.Error(w, "unexpected write", http.StatusInternalServerError)
			return
		case r.URL.Path == "/v1/job/shop":
			body = job
		case r.URL.Path == "/v1/job/shop/versions":
			body = map[string]any{"Versions": []*nomadapi.Job{job}}
		case r.URL.Path == "/v1/vars": // no failed release
			body = []*nomadapi.VariableMetadata{}
		case r.URL.Path == "/v1/var/"+envPath:
			body = &nomadapi.Variable{Path: envPath, Items: env}
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Nomad-Index", "7")
		_ = json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(srv.Close)
	client, err := nomadapi.NewClient(&nomadapi.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return client, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), writes...) }
}

// TestSetConfigKeepsTheLimits sets config vars on an app whose environment is near the
// limits, as `dyno config:set` and `dyno addons:create` do: each change that would break
// a limit is refused with the limit and the variable named, and nothing is written.
func TestSetConfigKeepsTheLimits(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": "postgres://u:p@db/shop", "BLOB": strings.Repeat("b", appspec.MaxConfigValueBytes)}
	cases := []struct {
		name string
		set  map[string]string
		want string
	}{
		{"value", map[string]string{"CERT": strings.Repeat("c", appspec.MaxConfigValueBytes+1)}, "shop cannot be released with these config vars, so nothing was changed: Config var too large (CERT is"},
		{"total", map[string]string{"CERT": strings.Repeat("c", appspec.MaxConfigBytes/2)}, "shop cannot be released with these config vars, so nothing was changed: Config vars too large ("},
		{"key", map[string]string{strings.Repeat("K", appspec.MaxConfigKeyBytes+1): "x"}, "Config var name too long ("},
	}
	many := map[string]string{}
	for i := range appspec.MaxConfigVars {
		many[fmt.Sprintf("V%d", i)] = "x"
	}
	cases = append(cases, struct {
		name string
		set  map[string]string
		want string
	}{"count", many, "shop cannot be released with these config vars, so nothing was changed: Too many config vars ("})
	for _, c := range cases {
		nomad, writes := fakeNomad(t, env)
		d := &Deployer{Nomad: nomad}
		_, err := d.SetConfig(context.Background(), "shop", c.set, nil, "")
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: SetConfig = %v; want an error that starts with %q", c.name, err, c.want)
		}
		if w := writes(); len(w) > 0 {
			t.Errorf("%s: Nomad got writes %v; want none", c.name, w)
		}
	}
}

func TestWriteEnvRefusesBeforeWriting(t *testing.T) {
	t.Parallel()
	nomad, writes := fakeNomad(t, nil)
	big := map[string]string{"A": strings.Repeat("a", appspec.MaxConfigBytes/2), "B": strings.Repeat("b", appspec.MaxConfigBytes/2)}
	path, err := WriteEnv(context.Background(), nomad, "shop", big)
	if err == nil || path != "" || !strings.Contains(err.Error(), "Config vars too large") {
		t.Errorf("WriteEnv = %q, %v; want the total size limit", path, err)
	}
	if w := writes(); len(w) > 0 {
		t.Errorf("Nomad got writes %v; want none", w)
	}
}

// TestConfigVarsAreTheApps reads what a build's ENV_DIR holds: the app's current config
// vars (config:set's and its add-ons') with the spec's on top; a new app's are the
// spec's; and a merge over a limit is refused, naming it, with nothing written.
func TestConfigVarsAreTheApps(t *testing.T) {
	t.Parallel()
	nomad, writes := fakeNomad(t, map[string]string{"DATABASE_URL": "postgres://u:p@db/shop", "GREETING": "set", "BOTH": "set"})
	d := &Deployer{Nomad: nomad}
	spec := &appspec.Spec{Name: "shop", Config: map[string]string{"BOTH": "spec", "RACK_ENV": "production"}}
	env, err := d.ConfigVars(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"DATABASE_URL": "postgres://u:p@db/shop", "GREETING": "set", "BOTH": "spec", "RACK_ENV": "production"}
	if fmt.Sprint(env) != fmt.Sprint(want) {
		t.Errorf("ConfigVars = %v, want %v", env, want)
	}

	env, err = d.ConfigVars(context.Background(), &appspec.Spec{Name: "newapp", Config: map[string]string{"A": "1"}})
	if err != nil || fmt.Sprint(env) != "map[A:1]" {
		t.Errorf("ConfigVars of a new app = %v, %v; want the spec's", env, err)
	}

	spec.Config = map[string]string{"C1": strings.Repeat("c", appspec.MaxConfigValueBytes), "C2": strings.Repeat("c", appspec.MaxConfigValueBytes)}
	if _, err := d.ConfigVars(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "Config vars too large") {
		t.Errorf("ConfigVars over the total size = %v; want the limit named", err)
	}
	if w := writes(); len(w) > 0 {
		t.Errorf("Nomad got writes %v; want none", w)
	}
}
