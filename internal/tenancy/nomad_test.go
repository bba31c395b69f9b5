package tenancy

import (
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"
)

// An app's namespace is written again when it allows or denies other drivers than the
// grid makes it with.
func TestSameDrivers(t *testing.T) {
	t.Parallel()
	want := appNamespace("shop").Capabilities
	cases := []struct {
		name string
		have *nomadapi.NamespaceCapabilities
		same bool
	}{
		{"none (a namespace made before)", nil, false},
		{"no drivers named", &nomadapi.NamespaceCapabilities{}, false},
		{"the dyno driver", &nomadapi.NamespaceCapabilities{EnabledTaskDrivers: []string{DynoDriver}}, true},
		{"also exec", &nomadapi.NamespaceCapabilities{EnabledTaskDrivers: []string{DynoDriver, "exec"}}, false},
		{"the dyno driver, exec denied", &nomadapi.NamespaceCapabilities{EnabledTaskDrivers: []string{DynoDriver}, DisabledTaskDrivers: []string{"exec"}}, false},
	}
	for _, c := range cases {
		if got := sameDrivers(c.have, want); got != c.same {
			t.Errorf("%s: sameDrivers = %v, want %v", c.name, got, c.same)
		}
	}
	if !sameDrivers(nil, nil) {
		t.Error("two namespaces without capabilities differ")
	}
}
