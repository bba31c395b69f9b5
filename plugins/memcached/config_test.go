package memcached

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/shoenig/test/must"

	"github.com/dynogrid/dynogrid/plugins/addon"
)

func TestConfigure(t *testing.T) {
	t.Parallel()
	cases := []struct {
		settings map[string]string
		want     string
	}{
		{map[string]string{}, `setting "nomad_addr" is required`},
		{map[string]string{"nomad_addr": "127.0.0.1:4646"}, `not an http(s):// URL`},
		{map[string]string{"nomad_addr": "http://n:4646", "auth": "maybe"}, `"auth" is not true or false`},
		{map[string]string{"nomad_addr": "http://n:4646", "memcached_path": "memcached"}, "absolute path"},
		{map[string]string{"nomad_addr": "http://n:4646", "service_provider": "etcd"}, "consul, nomad or none"},
		{map[string]string{"nomad_addr": "http://n:4646", "datacenters": " , "}, "names no datacenter"},
		{map[string]string{"nomad_addr": "http://n:4646", "nomad_adr": "x"}, `unknown setting "nomad_adr"`},
		{map[string]string{"nomad_addr": "https://n:4646", "nomad_ca_file": "ca.pem"}, `"nomad_ca_file" must be an absolute path`},
		{map[string]string{"nomad_addr": "https://n:4646", "nomad_client_cert": "/c.pem"}, `"nomad_client_cert" and "nomad_client_key" go together`},
		{map[string]string{"nomad_addr": "http://n:4646", "nomad_ca_file": "/ca.pem"}, `need an https:// "nomad_addr"`},
		{map[string]string{"nomad_addr": "https://n:4646", "nomad_ca_file": "/nonexistent/ca.pem"}, "/nonexistent/ca.pem"},
	}
	for _, c := range cases {
		err := New(nil).Configure(context.Background(), addon.Config{Settings: c.settings})
		must.ErrorContains(t, err, c.want)
	}
}

func TestDescribeFollowsAuth(t *testing.T) {
	t.Parallel()
	a := New(nil)
	must.NoError(t, a.Configure(context.Background(), addon.Config{Settings: map[string]string{"nomad_addr": "http://n:4646"}}))
	d, _ := a.Describe(context.Background())
	must.Eq(t, []string{"MEMCACHED_SERVERS", "MEMCACHED_USERNAME", "MEMCACHED_PASSWORD"}, d.EnvVars)
	must.NoError(t, addon.ValidateDescription(d))
	must.NoError(t, a.Configure(context.Background(), addon.Config{Settings: map[string]string{"nomad_addr": "http://n:4646", "auth": "false"}}))
	d, _ = a.Describe(context.Background())
	must.Eq(t, []string{"MEMCACHED_SERVERS"}, d.EnvVars)
}

func TestJob(t *testing.T) {
	t.Parallel()
	a := New(nil)
	must.NoError(t, a.Configure(context.Background(), addon.Config{Settings: map[string]string{"nomad_addr": "http://n:4646"}}))
	id := JobID("shop", "r1")
	must.Eq(t, id, JobID("shop", "r1"))
	must.NotEq(t, id, JobID("shop", "r2"))
	j := a.job(id, "shop", "r1", "dev")
	must.Eq(t, id, *j.ID)
	must.Eq(t, "shop", j.Meta[metaApp])
	task := j.TaskGroups[0].Tasks[0]
	must.Eq(t, "exec", task.Driver)
	must.Eq(t, "/usr/bin/memcached", task.Config["command"])
	must.SliceContains(t, task.Config["args"].([]string), "-Y")
	must.StrContains(t, *task.Templates[0].EmbeddedTmpl, `nomadVar "nomad/jobs/`+id+`"`)
	must.Eq(t, 64+32, *task.Resources.MemoryMB)
}

// TestConfigureNomadCA: with nomad_ca_file the add-on's Nomad client trusts a private CA,
// without it the system's CAs only.
func TestConfigureNomadCA(t *testing.T) {
	t.Parallel()
	nomad := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`"10.0.0.11:4647"`))
	}))
	defer nomad.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	must.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: nomad.Certificate().Raw}), 0o644))

	a := New(nil)
	must.NoError(t, a.Configure(context.Background(), addon.Config{Settings: map[string]string{"nomad_addr": nomad.URL}}))
	_, err := a.nomad.Status().Leader()
	must.ErrorContains(t, err, "certificate")

	must.NoError(t, a.Configure(context.Background(), addon.Config{Settings: map[string]string{"nomad_addr": nomad.URL, "nomad_ca_file": ca}}))
	leader, err := a.nomad.Status().Leader()
	must.NoError(t, err)
	must.Eq(t, "10.0.0.11:4647", leader)
}
