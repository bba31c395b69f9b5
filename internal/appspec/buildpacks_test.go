package appspec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildpacksList reads each kind of entry, and refuses each bad one with a
// diagnostic naming it and its place.
func TestBuildpacksList(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, s := range []string{"detect", "compile", "release"} {
		writeFile(t, filepath.Join(dir, "bp", "bin", s), "#!/bin/sh\n", 0o755)
	}
	writeFile(t, filepath.Join(dir, "half", "bin", "detect"), "#!/bin/sh\n", 0o755)
	writeFile(t, filepath.Join(dir, "Procfile"), "web: thin start\n", 0o644)

	load := func(list string) (*Spec, string) {
		t.Helper()
		path := filepath.Join(dir, "dyno.hcl")
		writeFile(t, path, fmt.Sprintf("app \"shop\" {\n  procfile = \"Procfile\"\n  buildpacks = %s\n}\n", list), 0o644)
		spec, diags := Load(path)
		return spec, FormatDiagnostics(diags)
	}
	spec, diags := load(`["nodejs", "./bp", "https://example.com/x/bp.tar.gz"]`)
	if spec == nil {
		t.Fatalf("a good list was refused:\n%s", diags)
	}
	want := []Buildpack{{BuiltIn: "nodejs"}, {Dir: filepath.Join(dir, "bp")}, {URL: "https://example.com/x/bp.tar.gz"}}
	if fmt.Sprint(spec.Buildpacks) != fmt.Sprint(want) {
		t.Errorf("buildpacks = %v, want %v", spec.Buildpacks, want)
	}

	for list, wantDiag := range map[string]string{
		`"ruby"`:                                "dyno.hcl:3:16: error: Invalid buildpacks",
		`["python"]`:                            `Buildpack 1: "python" is neither a built-in buildpack (ruby, nodejs, procfile)`,
		`["ruby", ""]`:                          "dyno.hcl:3:25: error: Invalid buildpack: Buildpack 2: is empty.",
		`["./half"]`:                            `"./half" has no executable bin/compile`,
		`["./nowhere"]`:                         `"./nowhere" has no executable bin/detect`,
		`["ftp://example.com/bp.tar.gz"]`:       "is not an http or https URL",
		`["https://u:p@example.com/bp.tar.gz"]`: "without credentials",
		`["https://example.com/bp.zip"]`:        "does not name a .tar.gz or .tgz archive",
		`[1]`:                                   `"1" is neither`, // a number converts to a string; it is no buildpack
		`["ruby","ruby","ruby","ruby","ruby","ruby","ruby","ruby","ruby"]`:                              "Too many buildpacks (9; the limit is 8)",
		fmt.Sprintf("[%q]", "https://example.com/"+strings.Repeat("a", MaxBuildpackRefBytes)+".tar.gz"): "is longer than 1024 bytes",
	} {
		spec, diags := load(list)
		if spec != nil || !strings.Contains(diags, wantDiag) {
			t.Errorf("buildpacks = %s: got spec %v and diagnostics\n%s\nwant them to hold %q", list, spec != nil, diags, wantDiag)
		}
	}
}

// TestDefaultProcess sizes a buildpack's default process type as a Procfile line, and
// refuses a bad one.
func TestDefaultProcess(t *testing.T) {
	t.Parallel()
	p, err := DefaultProcess("web", " npm start ")
	if err != nil || p.Command != "npm start" || p.Count != 1 || p.HealthCheck != "/" {
		t.Errorf("DefaultProcess(web) = %+v, %v", p, err)
	}
	if p, err := DefaultProcess("worker", "node worker.js"); err != nil || p.Count != 0 {
		t.Errorf("DefaultProcess(worker) = %+v, %v", p, err)
	}
	for _, bad := range [][2]string{{"Web", "x"}, {"web", " "}, {"web", strings.Repeat("x", MaxCommandBytes+1)}} {
		if _, err := DefaultProcess(bad[0], bad[1]); err == nil {
			t.Errorf("DefaultProcess(%q, %d bytes) was accepted", bad[0], len(bad[1]))
		}
	}
}

func writeFile(t *testing.T, path, body string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
}
