package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/logstream"
	"github.com/dynogrid/dynogrid/internal/tenancy"
	"github.com/dynogrid/dynogrid/router/logapi"
)

// routerLogKey returns the app's router log key from its Nomad Variable, and makes one
// when the app has none yet: reading or making it takes the rights of the app's deploy
// token on the app's namespace, which is what lets a token read the app's router lines.
func routerLogKey(ctx context.Context, nomad *nomadapi.Client, app string) (string, error) {
	ns := tenancy.Namespace(app)
	for attempt := 0; attempt < 3; attempt++ {
		v, _, err := nomad.Variables().Read(logapi.KeyPath, (&nomadapi.QueryOptions{Namespace: ns}).WithContext(ctx))
		if err == nil {
			key := v.Items[logapi.KeyItem]
			if len(key) < logapi.MinKeyLen {
				return "", fmt.Errorf("the Nomad Variable %s of %s holds no router log key (item %q of %d characters or more): remove it and try again",
					logapi.KeyPath, app, logapi.KeyItem, logapi.MinKeyLen)
			}
			return key, nil
		}
		if !errors.Is(err, nomadapi.ErrVariablePathNotFound) {
			return "", fmt.Errorf("failed to read the router log key of %s: %w", app, err)
		}
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		key := hex.EncodeToString(b)
		_, _, err = nomad.Variables().CheckedCreate(&nomadapi.Variable{Namespace: ns, Path: logapi.KeyPath, Items: nomadapi.VariableItems{logapi.KeyItem: key}},
			(&nomadapi.WriteOptions{Namespace: ns}).WithContext(ctx))
		if err == nil {
			return key, nil
		}
		var conflict nomadapi.ErrCASConflict
		if !errors.As(err, &conflict) {
			return "", fmt.Errorf("failed to make a router log key for %s: %w", app, err)
		}
		// Another dyno logs made it meanwhile: read that one.
	}
	return "", fmt.Errorf("failed to make a router log key for %s: it kept changing", app)
}

// routerAddrs are the routers' logs endpoints to read: --router, else $DYNO_ROUTERS,
// else the local grid's router when the Nomad address is the local grid's.
func (m *meta) routerAddrs(flag string) ([]string, error) {
	v := flag
	if v == "" {
		v = os.Getenv("DYNO_ROUTERS")
	}
	if v == "" {
		g := m.localRouterGrid()
		if g == nil {
			return nil, nil
		}
		return []string{"http://" + g.Options.RouterLogsAddr()}, nil
	}
	var out []string
	for _, a := range strings.Split(v, ",") {
		a = strings.TrimSpace(a)
		if !strings.Contains(a, "://") {
			a = "http://" + a
		}
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("--router %q: want a router's logs endpoint, host:port or http(s)://host:port", a)
		}
		out = append(out, u.Scheme+"://"+u.Host)
	}
	return out, nil
}

// localRouterGrid is the local grid when it runs a router and the Nomad address is the
// local grid's (or not set), else nil.
func (m *meta) localRouterGrid() *devgrid.Grid {
	g := localGrid()
	if g == nil || g.Options.RouterPort == 0 {
		return nil
	}
	addr := m.nomadAddr
	if addr == "" {
		addr = os.Getenv("NOMAD_ADDR")
	}
	if addr != "" && strings.TrimPrefix(addr, "http://") != g.Options.NomadAddr() {
		return nil
	}
	return g
}

// refusedGrace is how long a router's refusal of the key is tried again: a router
// learns new apps from Nomad's job list as it changes, and looks a key that did not
// match up again after a second (router/logserve.go).
const refusedGrace = 3 * time.Second

// followRouter adds the app's router lines from one router to m: the last num, then
// (with follow) each new one until ctx ends. While following, a router that cannot be
// reached is tried again every second, and said once; a router that refuses the key is
// asked again for refusedGrace.
func followRouter(ctx context.Context, rr *logstream.RouterReader, num int, follow bool, m *logMerger, warn func(string)) error {
	failing := false
	start := time.Now()
	for {
		wait := time.Duration(0)
		if follow && rr.Started() {
			wait = logstream.Poll
		}
		lines, err := rr.Read(ctx, num, wait)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case err == nil:
			if failing {
				warn(fmt.Sprintf("Reading router lines from %s again", rr.Base))
				failing = false
			}
			for _, l := range lines {
				m.add(logLine{at: l.Time, prefix: "router", text: l.Line})
			}
		case errors.Is(err, logstream.ErrRefused) && time.Since(start) < refusedGrace:
			// The router may not know yet an app or a key made a moment ago.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(refusedGrace / 12):
			}
			continue
		case !follow || errors.Is(err, logstream.ErrRefused):
			return err
		default:
			if !failing {
				warn(err.Error() + "; trying again")
				failing = true
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
		if !follow {
			return nil
		}
	}
}
