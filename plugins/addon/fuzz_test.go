package addon

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzValidateResource feeds arbitrary answers to the checks: they never panic, and
// what they accept is safe to put in an environment.
func FuzzValidateResource(f *testing.F) {
	f.Add("r-1", "CACHE_URL", "cache://h:1", "")
	f.Add("", "cache_url", "a\nb", "msg")
	f.Add("r", "LD_PRELOAD", "\x00", "\n")
	f.Add("r\x7f", "CACHE_TOKEN", "\xff\xfe", strings.Repeat("m", 2000))
	d := Description{Name: "cache", Plans: []Plan{{Name: "a"}}, EnvVars: []string{"CACHE_URL"}}
	f.Fuzz(func(t *testing.T, id, name, value, message string) {
		r := Resource{ID: id, Env: map[string]string{name: value}, Message: message}
		if ValidateResource(d, r) != nil {
			return
		}
		if name != "CACHE_URL" || value == "" || !utf8.ValidString(value) || strings.ContainsAny(value, "\x00\r\n") {
			t.Fatalf("accepted %q=%q", name, value)
		}
		if id == "" || strings.ContainsAny(id, " \t\n") {
			t.Fatalf("accepted resource ID %q", id)
		}
	})
}
