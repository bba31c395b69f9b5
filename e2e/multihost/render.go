package multihost

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// datacenter is the test grid's Consul and Nomad datacenter.
const datacenter = "dc1"

// placeholderRE matches ${NAME}, what envsubst replaces when given the list of names; a
// lone $ (nginx's regular expressions) stays as it is.
var placeholderRE = regexp.MustCompile(`\$\{[A-Z][A-Z0-9_]*\}`)

// render writes <dir>/<name> (a file of examples/cluster) to dst with its ${NAME}s replaced by vars, as
// envsubst does for an operator, and fails when the file names one vars lacks: the
// test runs exactly the repository's files. mode 0600 keeps the tokens and keys root's.
func render(dir, name, dst string, vars map[string]string) error {
	src, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	missing := map[string]bool{}
	out := placeholderRE.ReplaceAllStringFunc(string(src), func(m string) string {
		k := m[2 : len(m)-1]
		v, ok := vars[k]
		if !ok {
			missing[k] = true
		}
		return v
	})
	if len(missing) > 0 {
		var names []string
		for k := range missing {
			names = append(names, k)
		}
		sort.Strings(names)
		return fmt.Errorf("examples/cluster/%s: no value for %s", name, strings.Join(names, ", "))
	}
	return os.WriteFile(dst, []byte(out), 0o600)
}

// quoted is addrs as an HCL list's items: "a", "b".
func quoted(addrs []string) string {
	q := make([]string, len(addrs))
	for i, a := range addrs {
		q[i] = fmt.Sprintf("%q", a)
	}
	return strings.Join(q, ", ")
}
