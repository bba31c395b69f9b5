package appspec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

// hclQuote writes s as an HCL quoted string, control characters as \u escapes.
func hclQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteRune('\\')
			b.WriteRune(r)
		case unicode.IsControl(r):
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func TestBadChar(t *testing.T) {
	t.Parallel()
	cases := []struct {
		s     string
		allow controls
		want  string
	}{
		{"thin start -p $PORT", noControls, ""},
		{"echo \"é ü 日本\"\tdone", noControls, ""},
		{"thin\x00start", noControls, "a NUL byte"},
		{"thin\x00start", anyControls, "a NUL byte"},
		{"echo \x1b]0;owned\x07", noControls, "the control character U+001B"},
		{"a\x7fb", noControls, "the control character U+007F"},
		{"a\u009bb", noControls, "the control character U+009B"},
		{"a\u0085b", noControls, "the control character U+0085"},
		{"a\vb", noControls, "the control character U+000B"},
		{"a\xffb", noControls, "the byte 0xFF, which is not UTF-8"},
		{"a\xffb\x1b\n", anyControls, ""},
		{"\uFFFD is a character", noControls, ""},
		{"bin/migrate\nexec bin/web", noControls, "the control character U+000A"},
		{"bin/migrate\nexec bin/web\r\n", lineControls, ""},
		{"a\rb", lineControls, "the control character U+000D"},
		{"a\x1bb\n", lineControls, "the control character U+001B"},
	}
	for _, c := range cases {
		if got := badChar(c.s, c.allow); got != c.want {
			t.Errorf("badChar(%q, %v) = %q, want %q", c.s, c.allow, got, c.want)
		}
	}
}

// TestCommandsRefuseControlCharacters: a NUL can never be exec'd, and an ESC or a C1
// control in a command is a terminal escape sequence wherever the command is shown.
// Each kind of command (Procfile line, process block, release block, schedule, a
// buildpack's default process type) is refused at its place.
func TestCommandsRefuseControlCharacters(t *testing.T) {
	t.Parallel()
	procfiles := []struct{ src, want string }{
		{"web: thin\x00start\n", `Procfile:1:1: error: Invalid command: Process type "web" has a command that holds a NUL byte: "thin\x00start".`},
		{"web: ok\nworker: echo \x1b]0;owned\x07\n", `Procfile:2:1: error: Invalid command: Process type "worker" has a command that holds the control character U+001B: "echo \x1b]0;owned\a".`},
		{"web: a\u009bb\n", `Procfile:1:1: error: Invalid command: Process type "web" has a command that holds the control character U+009B`},
		{"web: a\x7fb\n", `Procfile:1:1: error: Invalid command: Process type "web" has a command that holds the control character U+007F`},
		{"release: rake\xff\n", `Procfile:1:1: error: Invalid command: Process type "release" has a command that holds the byte 0xFF, which is not UTF-8: "rake\xff".`},
	}
	for _, c := range procfiles {
		entries, diags := ParseProcfile("Procfile", []byte(c.src))
		got := FormatDiagnostics(diags)
		if len(diags) != 1 || !strings.HasPrefix(got, c.want) {
			t.Errorf("Procfile %q: got %d diagnostics:\n%s\nwant one that starts with %q", c.src, len(diags), got, c.want)
		}
		for _, e := range entries {
			if badChar(e.Command, lineControls) != "" {
				t.Errorf("Procfile %q: entry %q kept its command %q", c.src, e.Name, e.Command)
			}
		}
	}
	if entries, diags := ParseProcfile("Procfile", []byte("web: thin\tstart\n")); diags.HasErrors() || entries[0].Command != "thin\tstart" {
		t.Errorf("a tab in a command: %s, want it kept", FormatDiagnostics(diags))
	}

	specs := []struct{ body, want string }{
		{"  process \"worker\" {\n    command = " + hclQuote("ruby\x00w.rb") + "\n  }\n",
			`dyno.hcl:4:15: error: Invalid command: Process type "worker" has a command that holds a NUL byte: "ruby\x00w.rb".`},
		{"  process \"release\" {\n    command = " + hclQuote("rake \x1b[2J") + "\n  }\n",
			`dyno.hcl:4:15: error: Invalid command: Process type "release" has a command that holds the control character U+001B`},
		{"  schedule \"nightly\" {\n    cron    = \"@daily\"\n    command = " + hclQuote("rake\u0085cleanup") + "\n  }\n",
			`dyno.hcl:5:15: error: Invalid command: Schedule "nightly" has a command that holds the control character U+0085`},
	}
	for _, c := range specs {
		s, diags := Parse("dyno.hcl", []byte(spec(c.body)))
		got := FormatDiagnostics(diags)
		if s != nil || len(diags) != 1 || !strings.HasPrefix(got, c.want) {
			t.Errorf("got spec %v and %d diagnostics:\n%s\nwant one that starts with %q", s, len(diags), got, c.want)
		}
	}

	// A command over several lines (a heredoc), which sh -c runs line by line, loads.
	multi := spec("  process \"worker\" {\n    command = <<-EOT\n      bin/migrate\n      exec bin/worker\n    EOT\n  }\n  schedule \"nightly\" {\n    cron    = \"@daily\"\n    command = \"rake a\\nrake b\"\n  }\n")
	if s, diags := Parse("dyno.hcl", []byte(multi)); diags.HasErrors() || s.Process("worker").Command != "bin/migrate\nexec bin/worker" {
		t.Errorf("a command over several lines: %s, want it kept", FormatDiagnostics(diags))
	}

	_, err := DefaultProcess("web", "npm\x00start")
	if err == nil || !strings.Contains(err.Error(), `Process type "web" has a command that holds a NUL byte`) {
		t.Errorf("DefaultProcess with a NUL: %v, want refused", err)
	}
}

// TestConfigValueWithNUL: a config var may hold line breaks and other control
// characters (a PEM bundle, say), but no NUL, which no environment variable can carry.
func TestConfigValueWithNUL(t *testing.T) {
	t.Parallel()
	s, diags := Parse("dyno.hcl", []byte(spec("  config {\n    OK = "+hclQuote("a\nb\tc\x1b")+"\n    BAD = "+hclQuote("x\x00y")+"\n  }\n")))
	want := "dyno.hcl:5:11: error: Invalid config var value: BAD holds a NUL byte, which no environment variable can carry."
	if got := FormatDiagnostics(diags); s != nil || len(diags) != 1 || !strings.HasPrefix(got, want) {
		t.Errorf("got spec %v and diagnostics:\n%s\nwant one that starts with %q", s, got, want)
	}
}

// TestHealthCheckPath refuses at the attribute every path Nomad would refuse at
// registration (what url.Parse refuses), every control character and a path that
// would name another host; it keeps any other path.
func TestHealthCheckPath(t *testing.T) {
	t.Parallel()
	parse := func(path string) (*Spec, string) {
		src := "app \"shop\" {\n  process \"web\" {\n    command      = \"thin start\"\n    health_check = " + hclQuote(path) + "\n  }\n}\n"
		s, diags := Parse("dyno.hcl", []byte(src))
		return s, FormatDiagnostics(diags)
	}
	const at = "dyno.hcl:4:20: error: Invalid health check path: "
	refused := []struct{ path, want string }{
		{"health", `"health" is not a URL path; write one that starts with a slash`},
		{"/h%zz", `"/h%zz" is not a URL path (invalid URL escape "%zz")`},
		{"/h%", `"/h%" is not a URL path (invalid URL escape "%")`},
		{"/h\x00x", `"/h\x00x" holds a NUL byte`},
		{"/\u202e\u0085x\v", `"/\u202e\u0085x\v" holds the control character U+0085`},
		{"/h?x=\x7f", `"/h?x=\x7f" holds the control character U+007F`},
		{"/h\rx", `"/h\rx" holds the control character U+000D`},
		{"/a b", `"/a b" holds " ", which a URL path cannot`},
		{"/a\tb", `"/a\tb" holds "\t", which a URL path cannot`},
		{"/a#b", `"/a#b" holds "#", which a URL path cannot`},
		{"//evil.example/health", `"//evil.example/health" starts with two slashes`},
	}
	for _, c := range refused {
		s, got := parse(c.path)
		if s != nil || strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, at+c.want) {
			t.Errorf("health_check %q: got spec %v and\n%s\nwant one diagnostic that starts with %q", c.path, s, got, at+c.want)
		}
	}
	for _, path := range []string{"/", "/health", "/health?full=1&x=%zz", "/a%20b", "/é", "/" + strings.Repeat("h", MaxHealthCheckBytes-1)} {
		s, got := parse(path)
		if s == nil || s.Process("web").HealthCheck != path {
			t.Errorf("health_check %q: %s, want it kept", path, got)
		}
	}
}

// TestProcfileLineEndings: LF and CRLF end lines; a carriage return alone is refused
// at its place, not read as part of a command; a leading byte order mark is skipped.
func TestProcfileLineEndings(t *testing.T) {
	t.Parallel()
	type entry struct{ name, command string }
	cases := []struct {
		name, src string
		want      []entry
		diag      string
	}{
		{"LF", "web: a\nworker: b\n", []entry{{"web", "a"}, {"worker", "b"}}, ""},
		{"CRLF", "web: a\r\nworker: b\r\n", []entry{{"web", "a"}, {"worker", "b"}}, ""},
		{"CRLF without a last line end", "web: a\r\nworker: b", []entry{{"web", "a"}, {"worker", "b"}}, ""},
		{"bare CR", "web: a\rworker: b\r", nil, "Procfile:1:7: error: Bare carriage return: Save the Procfile with LF or CRLF line endings"},
		{"bare CR among CRLF", "web: a\r\nworker: b\rclock: c\r\n", []entry{{"web", "a"}}, "Procfile:2:10: error: Bare carriage return"},
		{"CR before CRLF", "web: a\r\r\n", nil, "Procfile:1:7: error: Bare carriage return"},
		{"byte order mark", "\ufeffweb: a\nworker: b\n", []entry{{"web", "a"}, {"worker", "b"}}, ""},
		{"byte order mark and CRLF", "\ufeffweb: a\r\n", []entry{{"web", "a"}}, ""},
		{"byte order mark not at the start", "web: a\n\ufeffworker: b\n", []entry{{"web", "a"}}, `Procfile:2:1: error: Invalid process type name: "\ufeffworker"`},
	}
	for _, c := range cases {
		entries, diags := ParseProcfile("Procfile", []byte(c.src))
		var got []entry
		for _, e := range entries {
			got = append(got, entry{e.Name, e.Command})
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: entries %v, want %v", c.name, got, c.want)
		}
		d := FormatDiagnostics(diags)
		if c.diag == "" && d != "" || c.diag != "" && (len(diags) != 1 || !strings.HasPrefix(d, c.diag)) {
			t.Errorf("%s: diagnostics %q, want %q", c.name, d, c.diag)
		}
	}
	// The second line of a CRLF Procfile starts after the first line's CR and LF.
	entries, _ := ParseProcfile("Procfile", []byte("web: a\r\nworker: b\r\n"))
	if r := entries[1].Range; r.Start.Line != 2 || r.Start.Column != 1 || r.Start.Byte != 8 || r.End.Byte != 17 {
		t.Errorf("worker's range = %+v, want line 2 from byte 8 to 17", r)
	}
}

// TestByteOrderMark: a spec or a Procfile saved with a UTF-8 byte order mark loads.
func TestByteOrderMark(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "shop")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Procfile"), []byte("\ufeffweb: thin start\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, SpecFile), []byte("\ufeffapp \"shop\" {\n  procfile = \"Procfile\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, diags := Load(dir)
	if diags.HasErrors() || s.Name != "shop" || s.Process("web") == nil || s.Process("web").Command != "thin start" {
		t.Fatalf("got %+v, %s; want app shop with web: thin start", s, FormatDiagnostics(diags))
	}
	if err := os.Remove(filepath.Join(dir, SpecFile)); err != nil {
		t.Fatal(err)
	}
	s, diags = Load(dir)
	if diags.HasErrors() || s.Name != "shop" || s.Process("web") == nil || s.Process("web").Command != "thin start" {
		t.Errorf("the Procfile alone: got %+v, %s; want web: thin start", s, FormatDiagnostics(diags))
	}
}
