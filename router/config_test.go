package router

import (
	"strings"
	"testing"
)

// TestConfigRefusesSizesAndNamesOutOfRange: each setting the router holds memory for, and
// its domain, is refused beyond its limit with a message naming it.
func TestConfigRefusesSizesAndNamesOutOfRange(t *testing.T) {
	t.Parallel()
	for want, mod := range map[string]func(*Config){
		"body prefetch 99999999999: must be 0 to 16777216":      func(c *Config) { c.BodyPrefetch = 99999999999 },
		"body prefetch -1: must be 0 to 16777216":               func(c *Config) { c.BodyPrefetch = -1 },
		"max header bytes 99999999999: must be 1024 to 1048576": func(c *Config) { c.MaxHeaderBytes = 99999999999 },
		"max header bytes 100: must be 1024 to 1048576":         func(c *Config) { c.MaxHeaderBytes = 100 },
		"max body bytes -5: must be -1 (no limit) or more":      func(c *Config) { c.MaxBodyBytes = -5 },
		`domain "é": want a DNS name`:                           func(c *Config) { c.Domain = "é" },
		`domain "*.apps.test": want a DNS name`:                 func(c *Config) { c.Domain = "*.apps.test" },
		`domain "apps,test": want a DNS name`:                   func(c *Config) { c.Domain = "apps,test" },
		`domain "` + strings.Repeat("a.", 60) + `test": want`:   func(c *Config) { c.Domain = strings.Repeat("a.", 60) + "test" },
	} {
		c := Config{Listen: "127.0.0.1:0"}
		mod(&c)
		if _, err := New(c); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v, want an error with %q", err, want)
		}
	}
	for _, ok := range []func(*Config){
		func(c *Config) { c.MaxBodyBytes = -1 },
		func(c *Config) { c.BodyPrefetch, c.MaxHeaderBytes = 16<<20, 1<<20 },
		func(c *Config) { c.Domain = "apps-1.example.com" },
	} {
		c := Config{Listen: "127.0.0.1:0"}
		ok(&c)
		if _, err := New(c); err != nil {
			t.Errorf("New: %v, want the settings taken", err)
		}
	}
}
