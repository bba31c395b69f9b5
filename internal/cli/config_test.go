package cli

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dynogrid/dynogrid/internal/appspec"
)

// TestConfigSetLimits: config vars that break a limit on their own are refused with the
// limit and the variable named, before any request reaches Nomad.
func TestConfigSetLimits(t *testing.T) {
	t.Parallel()
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer srv.Close()
	many := make([]string, appspec.MaxConfigVars+1)
	for i := range many {
		many[i] = fmt.Sprintf("V%d=x", i)
	}
	half := strings.Repeat("h", appspec.MaxConfigBytes/2)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"CERT=" + strings.Repeat("c", appspec.MaxConfigValueBytes+1)},
			fmt.Sprintf("Config var too large (CERT is %d bytes; the limit is %d)", appspec.MaxConfigValueBytes+1, appspec.MaxConfigValueBytes)},
		{[]string{"A=" + half, "B=" + half},
			fmt.Sprintf("Config vars too large (%d bytes; the limit is %d)", appspec.MaxConfigBytes+2, appspec.MaxConfigBytes)},
		{[]string{strings.Repeat("K", appspec.MaxConfigKeyBytes+1) + "=x"},
			fmt.Sprintf("Config var name too long (%d bytes; the limit is %d)", appspec.MaxConfigKeyBytes+1, appspec.MaxConfigKeyBytes)},
		{many, fmt.Sprintf("Too many config vars (%d; the limit is %d)", appspec.MaxConfigVars+1, appspec.MaxConfigVars)},
		{[]string{"lower=x"}, `"lower" is not a config var name`},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		args := append([]string{"config:set", "--app", "shop", "--nomad-addr", srv.URL}, c.args...)
		code := Run(args, &out, &errOut)
		if code == 0 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("config:set %.40s...: exit %d, stderr %.300q; want non-zero and %q", strings.Join(c.args, " "), code, errOut.String(), c.want)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("Nomad got %d requests; want none", n)
	}
}
