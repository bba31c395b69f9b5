package addon

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shoenig/test/must"
)

func validDescription() Description {
	return Description{Name: "cache", Version: "1.0", Plans: []Plan{{Name: "small"}, {Name: "large"}}, EnvVars: []string{"CACHE_URL", "CACHE_TOKEN"}}
}

func TestValidateDescription(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(*Description)
		want   string
	}{
		{"valid", func(*Description) {}, ""},
		{"uppercase name", func(d *Description) { d.Name = "Cache" }, `name "Cache"`},
		{"no plans", func(d *Description) { d.Plans = nil }, "no plans"},
		{"duplicate plan", func(d *Description) { d.Plans = append(d.Plans, Plan{Name: "small"}) }, `plan "small" listed twice`},
		{"bad default", func(d *Description) { d.DefaultPlan = "huge" }, `default plan "huge"`},
		{"no variables", func(d *Description) { d.EnvVars = nil }, "no variables declared"},
		{"lowercase variable", func(d *Description) { d.EnvVars = []string{"cache_url"} }, `"cache_url" is not of the form`},
		{"reserved variable", func(d *Description) { d.EnvVars = []string{"PORT"} }, `"PORT" is reserved`},
		{"reserved prefix", func(d *Description) { d.EnvVars = []string{"LD_PRELOAD"} }, "reserved prefix LD_"},
		{"duplicate variable", func(d *Description) { d.EnvVars = []string{"A", "A"} }, `"A" listed twice`},
		{"summary with newline", func(d *Description) { d.Summary = "a\nb" }, "summary"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := validDescription()
			c.change(&d)
			err := ValidateDescription(d)
			if c.want == "" {
				must.NoError(t, err)
				return
			}
			must.ErrorContains(t, err, c.want)
			must.False(t, strings.Contains(err.Error(), "\n"), must.Sprint("one line"))
		})
	}
}

func TestValidateResource(t *testing.T) {
	t.Parallel()
	good := map[string]string{"CACHE_URL": "cache://h:1", "CACHE_TOKEN": "t"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		m[k] = v
		return m
	}
	cases := []struct {
		name string
		res  Resource
		want string
	}{
		{"valid", Resource{ID: "r-1", Env: good}, ""},
		{"empty ID", Resource{Env: good}, "empty resource ID"},
		{"ID with space", Resource{ID: "a b", Env: good}, "printable ASCII"},
		{"no variables", Resource{ID: "r"}, "no variables"},
		{"missing variable", Resource{ID: "r", Env: map[string]string{"CACHE_URL": "x"}}, "CACHE_TOKEN is missing"},
		{"undeclared variable", Resource{ID: "r", Env: with("OTHER", "x")}, "OTHER was not declared"},
		{"bad name", Resource{ID: "r", Env: with("9LIVES", "x")}, `"9LIVES" is not of the form`},
		{"empty value", Resource{ID: "r", Env: with("CACHE_TOKEN", "")}, "CACHE_TOKEN: empty value"},
		{"newline", Resource{ID: "r", Env: with("CACHE_TOKEN", "a\nB=1")}, "line break"},
		{"NUL", Resource{ID: "r", Env: with("CACHE_TOKEN", "a\x00b")}, "NUL"},
		{"control", Resource{ID: "r", Env: with("CACHE_TOKEN", "a\x1bb")}, "control character"},
		{"invalid UTF-8", Resource{ID: "r", Env: with("CACHE_TOKEN", "\xff")}, "UTF-8"},
		{"too long", Resource{ID: "r", Env: with("CACHE_TOKEN", strings.Repeat("a", MaxEnvValueBytes+1))}, "at most 4096"},
		{"message with newline", Resource{ID: "r", Env: good, Message: "a\nb"}, "message"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := ValidateResource(validDescription(), c.res)
			if c.want == "" {
				must.NoError(t, err)
				return
			}
			must.ErrorContains(t, err, c.want)
		})
	}
}

func TestResolvePlan(t *testing.T) {
	t.Parallel()
	d := validDescription()
	p, err := d.ResolvePlan("")
	must.NoError(t, err)
	must.Eq(t, "small", p, must.Sprint("the first plan without a default"))
	d.DefaultPlan = "large"
	p, _ = d.ResolvePlan("")
	must.Eq(t, "large", p)
	_, err = d.ResolvePlan("huge")
	must.ErrorContains(t, err, `no plan "huge" (plans: small, large)`)
}

func TestValidateRequests(t *testing.T) {
	t.Parallel()
	must.NoError(t, ValidateProvisionRequest(ProvisionRequest{RequestID: "0b1c-2d.3_e", App: "my-app", Plan: "dev", Name: "DATABASE"}))
	must.ErrorContains(t, ValidateProvisionRequest(ProvisionRequest{RequestID: "../x", App: "a"}), "request ID")
	must.ErrorContains(t, ValidateProvisionRequest(ProvisionRequest{RequestID: "r", App: "My App"}), "app name")
	must.ErrorContains(t, ValidateDeprovisionRequest(DeprovisionRequest{RequestID: "r", App: "a"}), "empty resource ID")
}

func TestOneLine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in string
		max      int
		want     string
	}{
		{"a printable line as it is", "déjà vu: 3 × 4", 64, "déjà vu: 3 × 4"},
		{"line breaks and tabs are spaces", "a\r\nb\tc", 64, "a  b c"},
		{"terminal escapes made visible", "\x1b]52;c;ZXZpbA==\a\x1b[2J\x7f", 64, `\x1b]52;c;ZXZpbA==\x07\x1b[2J\x7f`},
		{"C1 control", "a\u009b2Jb", 64, `a\u009b2Jb`},
		{"not UTF-8", "a\xffb", 64, `a\xffb`},
		{"cut to max bytes with a mark", strings.Repeat("x", 20), 10, "xxxxxxx…"},
		{"exactly max", strings.Repeat("x", 10), 10, strings.Repeat("x", 10)},
		{"no rune is split", "ab" + strings.Repeat("é", 10), 9, "abéé…"},
		{"no escape is split", "abcde\x1bxyz", 10, "abcde…"},
		{"the end fits whole", "abc\x1b", 7, `abc\x1b`},
		{"a max below the mark", "abcdef", 2, "ab"},
	}
	for _, c := range cases {
		got := OneLine(c.in, c.max)
		must.Eq(t, c.want, got, must.Sprint(c.name))
		must.LessEq(t, c.max, len(got), must.Sprint(c.name))
		must.True(t, printableLine(got, c.max), must.Sprintf("%s: %q is a printable line", c.name, got))
	}
}

// TestValidate_ErrorsAreBounded: however many problems an answer has, and however long
// the names it quotes, the error is one line of at most MaxMessage bytes.
func TestValidate_ErrorsAreBounded(t *testing.T) {
	t.Parallel()
	env := map[string]string{}
	for i := range 10000 {
		env[fmt.Sprintf("bad_%d", i)] = "x"
	}
	env[strings.Repeat("\x1b", 1<<20)] = "x"
	err := ValidateResource(validDescription(), Resource{ID: "r", Env: env})
	must.Error(t, err)
	must.LessEq(t, MaxMessage, len(err.Error()))
	must.True(t, printableLine(err.Error(), MaxMessage), must.Sprintf("%q", err.Error()))
	must.StrContains(t, err.Error(), `variable name "`)
}
