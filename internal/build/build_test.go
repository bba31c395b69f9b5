package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynogrid/dynogrid/internal/appspec"
)

func TestParseStackKeepsTheRuntimesTheBuildUsed(t *testing.T) {
	b := []byte("name=debian-12\nruby=3.1.2\nnode=20.20.2\n")
	s, err := parseStack(b, []string{"ruby"})
	if err != nil || *s != (appspec.Stack{Name: "debian-12", Ruby: "3.1"}) {
		t.Errorf("ruby build: %+v, %v", s, err)
	}
	s, err = parseStack(b, []string{"nodejs", "procfile"})
	if err != nil || *s != (appspec.Stack{Name: "debian-12", Node: "20"}) {
		t.Errorf("nodejs build: %+v, %v", s, err)
	}
	// Nomad leaves ${attr...} as it is on a host without the attribute.
	s, err = parseStack([]byte("name=debian-12\nruby=${attr.driver.dyno.stack.ruby}\n"), []string{"ruby"})
	if err != nil || s.Ruby != "" {
		t.Errorf("a host without ruby: %+v, %v", s, err)
	}
	if _, err := parseStack([]byte("name=${attr.driver.dyno.stack}\n"), nil); err == nil {
		t.Error("a host without a stack fingerprint was accepted")
	}
}

func TestReleaseAppliesDefaultsTheSpecLacks(t *testing.T) {
	var r Release
	for _, y := range []string{
		"---\nconfig_vars:\n  GEM_HOME: /app/vendor\n  A: one\ndefault_process_types:\n  web: bundle exec rackup\n  worker: rake jobs\n",
		"--- {}\n",
		"default_process_types:\n  worker: sidekiq\n",
	} {
		if err := r.merge([]byte(y)); err != nil {
			t.Fatal(err)
		}
	}
	spec := &appspec.Spec{
		Processes: []appspec.Process{{Name: "console", Command: "irb"}, {Name: "web", Command: "thin start"}},
		Config:    map[string]string{"A": "mine"},
	}
	if err := r.Apply(spec, "/tmp/built", &appspec.Stack{Name: "debian-12"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range spec.Processes {
		got = append(got, p.Name+": "+p.Command)
	}
	if strings.Join(got, ", ") != "console: irb, web: thin start, worker: sidekiq" {
		t.Errorf("processes: %s; want the Procfile's web kept and the later buildpack's worker", strings.Join(got, ", "))
	}
	if spec.Config["A"] != "mine" || spec.Config["GEM_HOME"] != "/app/vendor" || spec.Dir != "/tmp/built" || spec.Stack.Name != "debian-12" {
		t.Errorf("spec after Apply: %+v", spec)
	}
	if err := r.merge([]byte("default_process_types: [1, 2]\n")); err == nil {
		t.Error("a bin/release output that is not the contract's YAML was accepted")
	}
	bad := Release{DefaultProcessTypes: map[string]string{"Web!": "x"}}
	if err := bad.Apply(&appspec.Spec{}, "/tmp", nil); err == nil || !strings.Contains(err.Error(), "bin/release") {
		t.Errorf("a bad default process type: %v", err)
	}
}

// TestReleaseGivesAnAppWithoutProcfileItsProcesses checks a source with only a
// package.json: its buildpack's default web process is the app's one web dyno, and a
// build that gives no process type is refused with what to add.
func TestReleaseGivesAnAppWithoutProcfileItsProcesses(t *testing.T) {
	spec := &appspec.Spec{Name: "nodeapp"}
	if err := (Release{}).Apply(spec, "/tmp/built", nil); err == nil || !strings.Contains(err.Error(), "add a Procfile") {
		t.Errorf("a build with no process type at all: %v", err)
	}
	r := Release{DefaultProcessTypes: map[string]string{"web": "npm start"}}
	if err := r.Apply(spec, "/tmp/built", nil); err != nil {
		t.Fatal(err)
	}
	if web := spec.Process("web"); web == nil || web.Command != "npm start" || web.Count != 1 || web.HealthCheck != "/" {
		t.Errorf("web = %+v, want one dyno of npm start, checked at /", web)
	}
}

func TestFailedStepNamesTheLastFailure(t *testing.T) {
	out := "-----> Ruby app detected\nbundler: parse error\nbuild failed: ruby bin/compile exited 4\n"
	if got := failedStep(out, 1); got != "ruby bin/compile exited 4" {
		t.Errorf("failedStep = %q", got)
	}
	if got := failedStep("killed\n", 137); got != "the build exited 137" {
		t.Errorf("failedStep without a step = %q", got)
	}
}

// archive is a .tar.gz of files (name -> body), executable when the name is under bin/.
func archive(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		mode := int64(0o644)
		if strings.Contains(name, "bin/") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(body))
	}
	_ = tw.Close()
	_ = gz.Close()
	return buf.Bytes()
}

// TestAssembleBuildpacks lays out built-ins, a directory and a downloaded archive in the
// spec's order, and refuses an archive without the contract's programs, one over the
// size limit, and a directory with a symlink out of it.
func TestAssembleBuildpacks(t *testing.T) {
	good := archive(t, map[string]string{"bp-main/bin/detect": "#!/bin/sh\n", "bp-main/bin/compile": "#!/bin/sh\n", "bp-main/bin/release": "#!/bin/sh\n"})
	half := archive(t, map[string]string{"bin/detect": "#!/bin/sh\n"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/good.tar.gz":
			_, _ = w.Write(good)
		case "/half.tar.gz":
			_, _ = w.Write(half)
		case "/huge.tar.gz":
			w.Header().Set("Content-Length", "99999999999")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	local := t.TempDir()
	for _, s := range buildpackScripts {
		if err := os.MkdirAll(filepath.Join(local, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(local, "bin", s), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	list := []appspec.Buildpack{{BuiltIn: "nodejs"}, {Dir: local}, {URL: srv.URL + "/good.tar.gz"}}
	if err := assemble(context.Background(), dir, list); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"builder/build", "buildpacks/01-nodejs/bin/compile", "buildpacks/02-" + filepath.Base(local) + "/bin/detect", "buildpacks/03-good/bin/release"} {
		if st, err := os.Stat(filepath.Join(dir, p)); err != nil || st.Mode()&0o111 == 0 {
			t.Errorf("%s is not an executable of the build dyno's tree: %v", p, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "buildpacks", "order")); string(b) != "all\n" {
		t.Errorf("order = %q, want all for a spec's list", b)
	}

	for url, want := range map[string]string{
		"/half.tar.gz":    "no executable bin/compile",
		"/huge.tar.gz":    "larger than 50 MB",
		"/missing.tar.gz": "404",
	} {
		err := assemble(context.Background(), t.TempDir(), []appspec.Buildpack{{URL: srv.URL + url}})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "buildpack 1") {
			t.Errorf("%s: %v, want an error naming buildpack 1 and %q", url, err, want)
		}
	}
	if err := os.Symlink("/etc/shadow", filepath.Join(local, "bin", "secret")); err != nil {
		t.Fatal(err)
	}
	if err := assemble(context.Background(), t.TempDir(), []appspec.Buildpack{{Dir: local}}); err == nil || !strings.Contains(err.Error(), "links out of the buildpack") {
		t.Errorf("a symlink out of a buildpack directory: %v", err)
	}
}

// TestReadOutputRefusesWhatIsNotABuild refuses unknown files and release outputs out of
// range in the build dyno's stdout.
func TestReadOutputRefusesWhatIsNotABuild(t *testing.T) {
	for name, want := range map[string]string{"../../etc/passwd": "unknown file", "release/99.yml": "unknown file", "release/x.yml": "unknown file"} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte("x"))
		_ = tw.Close()
		err := readOutput(&buf, &Result{Dir: t.TempDir()}, filepath.Join(t.TempDir(), "cache.tar.gz"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
}

// TestBuildCacheIsPrivate keeps an app's build cache where only the slug store's owner
// reads it, replaced whole.
func TestBuildCacheIsPrivate(t *testing.T) {
	store := t.TempDir()
	path := cachePath(store, "shop")
	for _, body := range []string{"first", "second"} {
		if err := storeCache(strings.NewReader(body), path); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(path); string(b) != "second" {
		t.Errorf("cache = %q", b)
	}
	for p, want := range map[string]os.FileMode{filepath.Dir(path): 0o700, path: 0o600} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", p, st.Mode().Perm(), err, want)
		}
	}
	if cachePath(store, "other") == path {
		t.Error("two apps share a build cache")
	}
}

// TestWriteInputPutsEachConfigVarInEnvDir sends one file per config var, named after it,
// and refuses a name that is not a config var's (it would be a path in ENV_DIR).
func TestWriteInputPutsEachConfigVarInEnvDir(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src.tar.gz")
	if err := os.WriteFile(src, []byte("source"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	env := map[string]string{"DATABASE_URL": "postgres://u:p@db/shop", "GREETING": "hi"}
	if err := writeInput(&buf, src, filepath.Join(t.TempDir(), "none.tar.gz"), env); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(tr)
		got[hdr.Name] = string(b)
	}
	want := map[string]string{"src.tar.gz": "source", "env/": "", "env/DATABASE_URL": "postgres://u:p@db/shop", "env/GREETING": "hi"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the build's input holds %v, want %v", got, want)
	}
	err := writeInput(io.Discard, src, "", map[string]string{"../../etc/passwd": "x"})
	if err == nil || !strings.Contains(err.Error(), "ENV_DIR") {
		t.Errorf("a config var named ../../etc/passwd: %v; want it refused", err)
	}
}
