package appspec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// spec builds an app spec with a web process and body in the app block.
func spec(body string) string {
	return "app \"shop\" {\n  process \"web\" { command = \"thin start\" }\n" + body + "}\n"
}

func repeat(n int, f func(i int) string) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(f(i))
	}
	return b.String()
}

// limitCases are specs too large to commit, each breaking one limit by a little. Their
// diagnostics are in testdata/limits/<name>.golden.
var limitCases = map[string]string{
	"process_types": spec(repeat(MaxProcessTypes, func(i int) string {
		return fmt.Sprintf("  process \"w%d\" { command = \"run\" }\n", i)
	})),
	"command": spec(fmt.Sprintf("  process \"worker\" {\n    command = \"%s\"\n  }\n", strings.Repeat("x", MaxCommandBytes+1))),
	"health_check": "app \"shop\" {\n  process \"web\" {\n    command = \"thin start\"\n    health_check = \"/" +
		strings.Repeat("h", MaxHealthCheckBytes) + "\"\n  }\n}\n",
	"config_vars": spec("  config {\n" + repeat(MaxConfigVars+1, func(i int) string {
		return fmt.Sprintf("    V%d = \"x\"\n", i)
	}) + "  }\n"),
	"config_key":   spec("  config {\n    " + strings.Repeat("K", MaxConfigKeyBytes+1) + " = \"x\"\n  }\n"),
	"config_value": spec("  config {\n    BIG = \"" + strings.Repeat("v", MaxConfigValueBytes+1) + "\"\n  }\n"),
	"config_size": spec("  config {\n" + repeat(3, func(i int) string {
		return fmt.Sprintf("    PART_%d = \"%s\"\n", i, strings.Repeat("v", MaxConfigBytes/3))
	}) + "  }\n"),
	"domains": spec("  domains = [\n" + repeat(MaxDomains+1, func(i int) string {
		return fmt.Sprintf("    \"d%d.example.com\",\n", i)
	}) + "  ]\n"),
	"domain_length": spec("  domains = [\"" + strings.Repeat(strings.Repeat("a", 63)+".", 4) + "com\"]\n"),
	"addons": spec(repeat(MaxAddons+1, func(i int) string {
		return fmt.Sprintf("  addon \"postgres\" { as = \"db%d\" }\n", i)
	})),
	"spec_size":   spec("  # " + strings.Repeat("-", MaxSpecBytes) + "\n"),
	"unary_chain": spec("  config {\n    N = " + strings.Repeat("-", MaxNesting+1) + "1\n  }\n"),
}

func TestLimitGolden(t *testing.T) {
	t.Parallel()
	for name, src := range limitCases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			spec, diags := Parse("dyno.hcl", []byte(src))
			if !diags.HasErrors() || spec != nil {
				t.Fatalf("got spec %v and diagnostics %q; want only diagnostics", spec, FormatDiagnostics(diags))
			}
			checkGolden(t, filepath.Join("testdata", "limits", name+".golden"), FormatDiagnostics(diags))
		})
	}
}

// TestLimitsAreGenerous checks that a spec at every limit, but not over it, loads.
func TestLimitsAreGenerous(t *testing.T) {
	t.Parallel()
	body := repeat(MaxProcessTypes-1, func(i int) string {
		return fmt.Sprintf("  process \"w%d\" { command = \"run\" }\n", i)
	}) +
		"  config {\n" + repeat(MaxConfigVars-1, func(i int) string {
		return fmt.Sprintf("    V%03d = \"x\"\n", i)
	}) + "    BIG = \"" + strings.Repeat("v", MaxConfigValueBytes) + "\"\n  }\n" +
		"  domains = [\n" + repeat(MaxDomains, func(i int) string { // 100 names of 4 bytes: 499 bytes with commas
		return fmt.Sprintf("    \"%c.%s\",\n", "abcdefghijklmnopqrstuvwxyz0123456789"[i%36], []string{"io", "co", "ai"}[i/36])
	}) + "  ]\n" +
		repeat(MaxAddons, func(i int) string {
			return fmt.Sprintf("  addon \"postgres\" { as = \"db%d\" }\n", i)
		})
	s, diags := Parse("dyno.hcl", []byte(spec(body)))
	if diags.HasErrors() {
		t.Fatalf("a spec at the limits was refused:\n%s", FormatDiagnostics(diags))
	}
	if len(s.Processes) != MaxProcessTypes || len(s.Config) != MaxConfigVars || len(s.Domains) != MaxDomains || len(s.Addons) != MaxAddons {
		t.Errorf("got %d process types, %d config vars, %d domains, %d add-ons; want %d, %d, %d, %d",
			len(s.Processes), len(s.Config), len(s.Domains), len(s.Addons), MaxProcessTypes, MaxConfigVars, MaxDomains, MaxAddons)
	}
}

// TestManyProcessTypes is the spec that once became a Nomad job of 20,000 task groups:
// it gets one diagnostic, at the first block over the limit.
func TestManyProcessTypes(t *testing.T) {
	t.Parallel()
	src := "app \"shop\" {\n" + repeat(20000, func(i int) string {
		return fmt.Sprintf("process \"p%d\" { command = \"x\" }\n", i)
	}) + "}\n"
	if len(src) > MaxSpecBytes {
		src = src[:strings.LastIndex(src[:MaxSpecBytes-2], "\n")+1] + "}\n"
	}
	s, diags := Parse("dyno.hcl", []byte(src))
	got := FormatDiagnostics(diags)
	want := fmt.Sprintf("dyno.hcl:%d:1: error: Too many process types (", MaxProcessTypes+2)
	if s != nil || len(diags) != 1 || !strings.HasPrefix(got, want) {
		t.Fatalf("got spec %v and %d diagnostics:\n%s\nwant one that starts with %q", s, len(diags), got, want)
	}
}

func TestSpecFileSizeIsCheckedBeforeReading(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, SpecFile)
	if err := os.WriteFile(path, []byte(spec("  # "+strings.Repeat("-", 4*MaxSpecBytes)+"\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, path} {
		s, diags := Load(p)
		got := FormatDiagnostics(diags)
		want := fmt.Sprintf("%s:1:1: error: App spec too large (%s is over the limit of %d bytes)", path, path, MaxSpecBytes)
		if s != nil || len(diags) != 1 || !strings.HasPrefix(got, want) {
			t.Errorf("Load(%s) = %v, %q; want one diagnostic that starts with %q", p, s, got, want)
		}
	}
	b, err := readLimited(path, MaxSpecBytes)
	if err != nil || len(b) != MaxSpecBytes+1 {
		t.Errorf("readLimited read %d bytes (%v), want %d", len(b), err, MaxSpecBytes+1)
	}
}

func TestProcfileLimits(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ src, want string }{
		"size": {
			// The diagnostic points at the byte over the limit: after the 16 bytes of the
			// first line, in one of the 100-byte comment lines.
			src:  "web: thin start\n" + strings.Repeat("# "+strings.Repeat("-", 97)+"\n", MaxProcfileBytes/100+1),
			want: fmt.Sprintf("Procfile:%d:%d: error: Procfile too large (Procfile is over the limit of %d bytes)", 2+(MaxProcfileBytes-16)/100, (MaxProcfileBytes-16)%100+1, MaxProcfileBytes),
		},
		"lines": {
			src:  "web: thin start\n" + strings.Repeat("\n", MaxProcfileLines),
			want: fmt.Sprintf("Procfile:%d:1: error: Procfile too long (over the limit of %d lines)", MaxProcfileLines+1, MaxProcfileLines),
		},
		"types": {
			src:  repeat(MaxProcessTypes+5, func(i int) string { return fmt.Sprintf("p%d: run\n", i) }),
			want: fmt.Sprintf("Procfile:%d:1: error: Too many process types (over the limit of %d)", MaxProcessTypes+1, MaxProcessTypes),
		},
		"command": {
			src:  "web: thin start\nworker: " + strings.Repeat("x", MaxCommandBytes+1) + "\n",
			want: fmt.Sprintf("Procfile:2:1: error: Command too long (%d bytes; the limit is %d): Process type \"worker\"", MaxCommandBytes+1, MaxCommandBytes),
		},
	}
	for name, c := range cases {
		entries, diags := ParseProcfile("Procfile", []byte(c.src))
		got := FormatDiagnostics(diags)
		if len(diags) != 1 || !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: got %d diagnostics:\n%s\nwant one that starts with %q", name, len(diags), got, c.want)
		}
		if name == "types" && len(entries) != MaxProcessTypes {
			t.Errorf("types: got %d entries, want the first %d", len(entries), MaxProcessTypes)
		}
	}
}

// TestProcfileAndBlocksShareTheLimit counts the Procfile's process types and the
// process blocks together, and points at the Procfile line over the limit.
func TestProcfileAndBlocksShareTheLimit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	procfile := repeat(MaxProcessTypes, func(i int) string { return fmt.Sprintf("p%d: run\n", i) })
	blocks := repeat(10, func(i int) string { return fmt.Sprintf("  process \"b%d\" { command = \"x\" }\n", i) })
	if err := os.WriteFile(filepath.Join(dir, "Procfile"), []byte(procfile), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, SpecFile)
	if err := os.WriteFile(path, []byte("app \"shop\" {\n  procfile = \"Procfile\"\n"+blocks+"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, diags := Load(dir)
	got := FormatDiagnostics(diags)
	want := fmt.Sprintf("%s:%d:1: error: Too many process types (%d; the limit is %d)",
		filepath.Join(dir, "Procfile"), MaxProcessTypes-10+1, MaxProcessTypes+10, MaxProcessTypes)
	if s != nil || len(diags) != 1 || !strings.HasPrefix(got, want) {
		t.Fatalf("got spec %v and diagnostics:\n%s\nwant one that starts with %q", s, got, want)
	}
}

func TestValidateEnv(t *testing.T) {
	t.Parallel()
	many := map[string]string{}
	for i := range MaxConfigVars + 1 {
		many[fmt.Sprintf("V%d", i)] = "x"
	}
	big := map[string]string{"A": strings.Repeat("a", MaxConfigBytes/2), "B": strings.Repeat("b", MaxConfigBytes/2)}
	cases := []struct {
		name string
		env  map[string]string
		want string // "" means valid
	}{
		{"empty", nil, ""},
		{"at the value limit", map[string]string{"CERT": strings.Repeat("c", MaxConfigValueBytes)}, ""},
		{"count", many, fmt.Sprintf("Too many config vars (%d; the limit is %d)", MaxConfigVars+1, MaxConfigVars)},
		{"key", map[string]string{strings.Repeat("K", MaxConfigKeyBytes+1): "x"}, fmt.Sprintf("Config var name too long (%d bytes; the limit is %d)", MaxConfigKeyBytes+1, MaxConfigKeyBytes)},
		{"value", map[string]string{"OK": "1", "CERT": strings.Repeat("c", MaxConfigValueBytes+1)}, fmt.Sprintf("Config var too large (CERT is %d bytes; the limit is %d)", MaxConfigValueBytes+1, MaxConfigValueBytes)},
		{"total", big, fmt.Sprintf("Config vars too large (%d bytes; the limit is %d): Names and values together must fit in %d bytes; the largest var is A", MaxConfigBytes+2, MaxConfigBytes, MaxConfigBytes)},
	}
	for _, c := range cases {
		err := ValidateEnv(c.env)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want no error", c.name, err)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)):
			t.Errorf("%s: got %v, want an error that starts with %q", c.name, err, c.want)
		}
	}
	if err := ValidateConfigKey(strings.Repeat("K", MaxConfigKeyBytes+1)); err == nil || !strings.Contains(err.Error(), "Config var name too long") {
		t.Errorf("ValidateConfigKey of a long name = %v, want the length limit", err)
	}
}

func TestShortQuotesLongValues(t *testing.T) {
	t.Parallel()
	if got := short("web"); got != `"web"` {
		t.Errorf("short(web) = %s", got)
	}
	long := strings.Repeat("é", 100)
	got := short(long)
	if !strings.HasSuffix(got, "... (200 bytes)") || len(got) > 100 || strings.Contains(got, `\x`) {
		t.Errorf("short(200 bytes) = %s, want a cut quote that keeps whole characters and gives the length", got)
	}
}

func TestScheduleLimit(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("app \"shop\" {\n  process \"web\" { command = \"x\" }\n")
	for i := 0; i <= MaxSchedules; i++ {
		fmt.Fprintf(&b, "  schedule \"s%d\" {\n    cron = \"@daily\"\n    command = \"x\"\n  }\n", i)
	}
	b.WriteString("}\n")
	_, diags := Parse("dyno.hcl", []byte(b.String()))
	want := fmt.Sprintf("dyno.hcl:%d:3: error: Too many schedules (%d; the limit is %d)", 3+4*MaxSchedules, MaxSchedules+1, MaxSchedules)
	if got := FormatDiagnostics(diags); !strings.HasPrefix(got, want) {
		t.Errorf("diagnostics:\n%s\nwant %s", got, want)
	}
}

// TestDomainsFitOneServiceMetaValue: the domains reach the router joined with commas in
// one Consul service meta value, which Consul refuses over 512 bytes, and with it the
// web dynos' registration. A spec whose domains would not fit is refused at the list;
// one whose domains fit exactly is accepted.
func TestDomainsFitOneServiceMetaValue(t *testing.T) {
	t.Parallel()
	list := func(n, size int) (string, int) {
		var ds []string
		for i := 0; i < n; i++ {
			d := fmt.Sprintf("d%02d.example.com", i)
			ds = append(ds, strings.Repeat("x", size-len(d))+d)
		}
		return "  domains = [\"" + strings.Join(ds, "\", \"") + "\"]\n", len(strings.Join(ds, ","))
	}
	body, n := list(20, 25) // 20 names of 25 bytes and 19 commas: 519 bytes
	_, diags := Parse("dyno.hcl", []byte(spec(body)))
	if !diags.HasErrors() || !strings.Contains(FormatDiagnostics(diags), fmt.Sprintf("Domains too long together (%d bytes with commas; the limit is 512)", n)) {
		t.Errorf("domains of %d bytes with commas: %s, want refused as too long together", n, FormatDiagnostics(diags))
	}
	body, n = list(8, 63) // 8 names of 63 bytes and 7 commas: 511 bytes
	s, diags := Parse("dyno.hcl", []byte(spec(body)))
	if diags.HasErrors() || len(s.Domains) != 8 {
		t.Errorf("domains of %d bytes with commas: %s, want accepted", n, FormatDiagnostics(diags))
	}
}
