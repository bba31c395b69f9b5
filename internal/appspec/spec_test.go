package appspec

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestGolden decodes every testdata/*.hcl and compares the result (the spec as JSON, or
// for *_error.hcl the diagnostics) with its .golden file.
func TestGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	wd, _ := os.Getwd()
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			spec, diags := Load(f)
			wantErr := strings.HasSuffix(f, "_error.hcl")
			var got string
			switch {
			case wantErr && !diags.HasErrors():
				t.Fatalf("%s decoded without error, want diagnostics", f)
			case !wantErr && diags.HasErrors():
				t.Fatalf("%s: unexpected diagnostics:\n%s", f, FormatDiagnostics(diags))
			case wantErr:
				if spec != nil {
					t.Fatalf("%s: got a spec along with errors; nothing may be half-applied", f)
				}
				got = FormatDiagnostics(diags)
			default:
				spec.Dir = strings.TrimPrefix(spec.Dir, wd+string(filepath.Separator))
				b, _ := json.MarshalIndent(spec, "", "  ")
				got = string(b) + "\n"
			}
			checkGolden(t, strings.TrimSuffix(f, ".hcl")+".golden", got)
		})
	}
}

// checkGolden compares got with the golden file, or rewrites it under -update.
func checkGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run go test -update once): %v", err)
	}
	if got != string(want) {
		t.Errorf("%s:\n--- got ---\n%s--- want ---\n%s", golden, got, want)
	}
}

func TestProcfileDir(t *testing.T) {
	t.Parallel()
	spec, diags := Load("testdata/procapp")
	if diags.HasErrors() {
		t.Fatalf("unexpected diagnostics:\n%s", FormatDiagnostics(diags))
	}
	if spec.Name != "procapp" || len(spec.Processes) != 2 {
		t.Fatalf("spec = %+v, want app procapp with clock and web", spec)
	}
	web := spec.Process("web")
	if web == nil || web.Count != 1 || web.HealthCheck != "/" || web.Command != "thin start --rackup config.ru --port $PORT" {
		t.Errorf("web = %+v, want one dyno of the Procfile's command, checked at /", web)
	}
	if clock := spec.Process("clock"); clock == nil || clock.Count != 0 {
		t.Errorf("clock = %+v, want no dyno until it is scaled", clock)
	}
	for _, p := range spec.Processes {
		if p.Min != 0 || p.Max != MaxCount {
			t.Errorf("%s scales from %d to %d, want from 0 to %d", p.Name, p.Min, p.Max, MaxCount)
		}
	}
}

func TestProcfileErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"web thin start\n":             "Procfile:1:1: error: Malformed Procfile line",
		"web: a\nweb: b\n":             "Procfile:2:1: error: Duplicate process type",
		"\n\nWeb-1: x\n":               "Procfile:3:1: error: Invalid process type name",
		"web:\n":                       "Procfile:1:1: error: Missing command",
		"# only a comment\n":           "Procfile:1:1: error: Empty Procfile",
		"web: ok\nbad line no colon\n": "Procfile:2:1: error: Malformed Procfile line",
	}
	for src, want := range cases {
		_, diags := ParseProcfile("Procfile", []byte(src))
		got := FormatDiagnostics(diags)
		if !strings.HasPrefix(got, want) {
			t.Errorf("ParseProcfile(%q) = %q, want it to start with %q", src, got, want)
		}
	}
}

func TestNoSpecInDirectory(t *testing.T) {
	t.Parallel()
	_, diags := Load(t.TempDir())
	if !diags.HasErrors() || !strings.Contains(FormatDiagnostics(diags), "neither a dyno.hcl nor a Procfile") {
		t.Fatalf("diags = %q, want a message naming dyno.hcl and Procfile", FormatDiagnostics(diags))
	}
}

// TestBuildOnlyDirectory checks that a directory with a package.json or a Gemfile and
// no Procfile is an app named after it whose process types its build gives.
func TestBuildOnlyDirectory(t *testing.T) {
	t.Parallel()
	for _, f := range BuildFiles {
		dir := filepath.Join(t.TempDir(), "shop")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte("{}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		spec, diags := Load(dir)
		if diags.HasErrors() {
			t.Fatalf("%s only: %s", f, FormatDiagnostics(diags))
		}
		if spec.Name != "shop" || len(spec.Processes) != 0 || spec.Dir != dir {
			t.Errorf("%s only: spec = %+v, want app shop with no process type before its build", f, spec)
		}
	}
	notAFile := filepath.Join(t.TempDir(), "shop")
	if err := os.MkdirAll(filepath.Join(notAFile, "package.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, diags := Load(notAFile); !diags.HasErrors() {
		t.Error("a directory named package.json made an app")
	}
}

// TestProcfileReleaseLine checks that a Procfile's release line is the release phase,
// never a process type with dynos.
func TestProcfileReleaseLine(t *testing.T) {
	t.Parallel()
	spec, diags := Load("testdata/relapp")
	if diags.HasErrors() {
		t.Fatalf("unexpected diagnostics:\n%s", FormatDiagnostics(diags))
	}
	if spec.Process(ReleaseProcess) != nil || len(spec.Processes) != 1 {
		t.Errorf("processes = %+v, want web alone", spec.Processes)
	}
	if spec.Release == nil || spec.Release.Command != "ruby bin/migrate.rb" || spec.Release.Count != 0 {
		t.Errorf("release = %+v, want the Procfile's release command, with no dynos", spec.Release)
	}
	dir := filepath.Join(t.TempDir(), "onlyrelease")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Procfile"), []byte("release: rake db:migrate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, diags := Load(dir); !diags.HasErrors() || !strings.Contains(FormatDiagnostics(diags), "only a release command") {
		t.Errorf("a Procfile with only a release line gave %q, want an error saying it has no process type", FormatDiagnostics(diags))
	}
}
