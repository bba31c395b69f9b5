package appspec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse, which Load runs on a spec file once it
// has read at most MaxSpecBytes+1 bytes of it, and to ParseProcfile: neither may panic,
// and a spec Parse accepts keeps every limit.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.hcl")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("web: thin start\nworker: ruby w.rb\n"))
	f.Add([]byte(`app "a" { process "web" { command = "x" } config { A = -(-(!true ? 1 : 2)) } domains = ["a.b"] }`))
	f.Add([]byte("\ufeffweb: a\r\nworker: b\rclock: c\x00\n"))
	f.Add([]byte("app \"a\" {\n config {\n A = (\n-\n!\ntrue ? 1 : [for x in [] : x][*]\n)\n B = \"%{if true}${-1}%{endif}\"\n }\n}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		entries, diags := ParseProcfile("Procfile", src)
		if !diags.HasErrors() && (len(entries) == 0 || len(entries) > MaxProcessTypes) {
			t.Fatalf("Procfile: %d process types accepted", len(entries))
		}
		for _, e := range entries {
			if badChar(e.Command, lineControls) != "" || strings.Contains(e.Command, "\r") {
				t.Fatalf("Procfile: command %q accepted", e.Command)
			}
		}
		spec, diags := Parse("dyno.hcl", src)
		if diags.HasErrors() {
			if spec != nil {
				t.Fatal("a spec along with errors")
			}
			return
		}
		if spec == nil {
			t.Fatal("neither a spec nor an error")
		}
		if n := len(spec.Processes); n == 0 || n > MaxProcessTypes {
			t.Fatalf("%d process types accepted", n)
		}
		if len(spec.Domains) > MaxDomains || len(spec.Addons) > MaxAddons {
			t.Fatalf("%d domains, %d add-ons accepted", len(spec.Domains), len(spec.Addons))
		}
		if err := ValidateEnv(spec.Config); err != nil {
			t.Fatalf("config accepted that breaks a limit: %v", err)
		}
		for _, p := range spec.Processes {
			if len(p.Command) > MaxCommandBytes || len(p.HealthCheck) > MaxHealthCheckBytes || p.Count < 0 || p.Count > MaxCount {
				t.Fatalf("process %q accepted beyond a limit", p.Name)
			}
			if badChar(p.Command, lineControls) != "" || p.HealthCheck != "" && badHealthCheckPath(p.HealthCheck) != "" {
				t.Fatalf("process %q accepted with command %q and health check %q", p.Name, p.Command, p.HealthCheck)
			}
			if p.Min < 0 || p.Min > p.Count || p.Count > p.Max || p.Max > MaxCount {
				t.Fatalf("process %q accepted with count %d outside min %d and max %d (0 to %d)", p.Name, p.Count, p.Min, p.Max, MaxCount)
			}
		}
	})
}
