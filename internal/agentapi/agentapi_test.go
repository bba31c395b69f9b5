package agentapi

import "testing"

func TestNomadAddress(t *testing.T) {
	t.Setenv("NOMAD_ADDR", "https://nomad.example:4646")
	for addr, want := range map[string]string{
		"":                      "https://nomad.example:4646",
		"127.0.0.1:4646":        "http://127.0.0.1:4646",
		"https://10.0.0.1:4646": "https://10.0.0.1:4646",
	} {
		c, err := Nomad(addr)
		if err != nil {
			t.Fatalf("Nomad(%q): %v", addr, err)
		}
		if got := c.Address(); got != want {
			t.Errorf("Nomad(%q).Address() = %q, want %q", addr, got, want)
		}
	}
}

func TestConsulTakesAScheme(t *testing.T) {
	for _, addr := range []string{"", "127.0.0.1:8500", "http://127.0.0.1:8500", "https://127.0.0.1:8501"} {
		if _, err := Consul(addr); err != nil {
			t.Errorf("Consul(%q): %v", addr, err)
		}
	}
	if _, err := Consul("ftp://127.0.0.1:8500"); err == nil {
		t.Error(`Consul("ftp://...") made a client; want an error naming the scheme`)
	}
}
