package addonhost

import (
	"strings"
)

// passedEnv are the variables of the host's environment a plugin gets; everything else
// (an operator's NOMAD_TOKEN, cloud credentials...) stays with the host. An add-on gets
// its configuration from its settings.
var passedEnv = []string{"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR"}

// pluginEnv filters the host's environment down to passedEnv.
func pluginEnv(environ []string) []string {
	out := []string{}
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		for _, p := range passedEnv {
			if k == p {
				out = append(out, kv)
			}
		}
	}
	return out
}
