package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
	mcli "github.com/mitchellh/cli"

	"github.com/dynogrid/dynogrid/internal/agentapi"
	"github.com/dynogrid/dynogrid/internal/apierr"
	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/tenancy"
	"github.com/dynogrid/dynogrid/policies"
)

// meta holds what every app command shares: where Nomad is, which app, output format.
type meta struct {
	ui         mcli.Ui
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
	nomadAddr  string
	nomadToken string
	slugStore  string
	app        string
	json       bool
	timeout    time.Duration
	// clients are the Nomad clients the command opened.
	clients *nomadClients
}

// nomadClients are Nomad clients to close when a command ends.
type nomadClients struct {
	mu   sync.Mutex
	list []*nomadapi.Client
}

func (o *nomadClients) add(c *nomadapi.Client) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.list = append(o.list, c)
}

func (o *nomadClients) closeAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range o.list {
		c.Close()
	}
	o.list = nil
}

const commonHelp = `
Common options:
  --app=NAME, -a NAME  The app (default: the app of ./dyno.hcl, or of the
                       current directory's Procfile)
  --nomad-addr=URL     Nomad's HTTP address (default: $NOMAD_ADDR, or the local
                       grid of ` + "`dyno dev up`" + `, or http://127.0.0.1:4646)
  --nomad-token=TOKEN  Nomad ACL token: an app's deploy token or an operator's
                       (default: $NOMAD_TOKEN, or the local grid's management
                       token, readable by root only)
  --slug-store=DIR|URL Where slugs are stored for every host: a directory,
                       or a grid's https:// slug store, with
                       $DYNO_SLUG_STORE_USER, $DYNO_SLUG_STORE_PASSWORD and
                       $DYNO_SLUG_STORE_CACERT (default: $DYNO_SLUG_STORE, or
                       the local grid's store)
  --json               Print the result as JSON
  --timeout=D          How long to wait for dynos to be healthy (default 5m)`

func (m *meta) flagSet(name string) *flag.FlagSet {
	fs := newFlagSet(m.ui, name)
	fs.StringVar(&m.app, "app", "", "")
	fs.StringVar(&m.app, "a", "", "")
	fs.StringVar(&m.nomadAddr, "nomad-addr", "", "")
	fs.StringVar(&m.nomadToken, "nomad-token", "", "")
	fs.StringVar(&m.slugStore, "slug-store", "", "")
	fs.BoolVar(&m.json, "json", false, "")
	m.timeout = 5 * time.Minute
	fs.Func("timeout", "", func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration such as 10m or 90s")
		}
		m.timeout = d
		return nil
	})
	return fs
}

// localGrid is the grid that `dyno dev up` runs with its default data directory.
func localGrid() *devgrid.Grid {
	g, err := devgrid.Load(devgrid.Defaults().DataDir)
	if err != nil {
		return nil
	}
	return g
}

// nomad returns a Nomad client for app's namespace, or for every namespace when app is
// "". Its token is --nomad-token, else $NOMAD_TOKEN, else the local grid's management
// token when the address is the local grid's, as Nomad's own CLI finds them.
func (m *meta) nomad(app string) (*nomadapi.Client, error) {
	cfg := nomadapi.DefaultConfig() // reads NOMAD_ADDR, NOMAD_TOKEN and the other NOMAD_* variables
	g := localGrid()
	switch {
	case m.nomadAddr != "":
		cfg.Address = m.nomadAddr
	case os.Getenv("NOMAD_ADDR") == "" && g != nil:
		cfg.Address = "http://" + g.Options.NomadAddr()
	}
	if !strings.Contains(cfg.Address, "://") {
		cfg.Address = "http://" + cfg.Address
	}
	if m.nomadToken != "" {
		cfg.SecretID = m.nomadToken
	}
	if cfg.SecretID == "" && g != nil && cfg.Address == "http://"+g.Options.NomadAddr() {
		cfg.SecretID = localToken(g, func(t *devgrid.Tokens) string { return t.NomadManagement })
	}
	cfg.Namespace = "*"
	if app != "" {
		cfg.Namespace = tenancy.Namespace(app)
	}
	c, err := agentapi.NewNomad(cfg)
	if err == nil {
		m.clients.add(c)
	}
	return c, err
}

// localToken is one of the local grid's tokens, or "" for a user who may not read them.
func localToken(g *devgrid.Grid, pick func(*devgrid.Tokens) string) string {
	t, err := g.Tokens()
	if err != nil {
		return ""
	}
	return pick(t)
}

func (m *meta) deployer(app string) (*deploy.Deployer, error) {
	n, err := m.nomad(app)
	if err != nil {
		return nil, err
	}
	return m.withSlugRemote(m.deployerFor(n))
}

func (m *meta) deployerFor(n *nomadapi.Client) *deploy.Deployer {
	store := m.slugStore
	if store == "" {
		store = os.Getenv("DYNO_SLUG_STORE")
	}
	if store == "" {
		if g := localGrid(); g != nil {
			store = g.Options.SlugStore()
		} else {
			store = "/var/lib/dynogrid/slug-store"
		}
	}
	return &deploy.Deployer{Nomad: n, SlugStore: store, Progress: &uiWriterOut{m.ui}, Timeout: m.timeout}
}

// appName is the app the command is about: --app, or the app of the spec in the
// current directory.
func (m *meta) appName() (string, error) {
	if m.app != "" {
		if err := appspec.ValidateAppName(m.app); err != nil {
			return "", fmt.Errorf("--app: %w", err)
		}
		return m.app, nil
	}
	spec, diags := appspec.Load(".")
	if diags.HasErrors() {
		return "", errors.New("which app? pass --app NAME, or run the command in the app's directory")
	}
	m.app = spec.Name
	return spec.Name, nil
}

// interruptible returns a context that ends on Ctrl-C.
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Exit codes besides 0 and 1.
const (
	exitNoApp            = 3
	exitPermissionDenied = 4
)

func (m *meta) fail(err error) int {
	m.ui.Error("Error: " + err.Error())
	switch {
	case errors.Is(err, deploy.ErrNoApp):
		return exitNoApp
	case apierr.IsStatus(err, http.StatusForbidden):
		m.ui.Error(m.permissionHint())
		return exitPermissionDenied
	}
	return 1
}

// permissionHint says which rights a refused command needed.
func (m *meta) permissionHint() string {
	if m.app == "" {
		return "This token may not do this. Use the app's deploy token (--nomad-token or $NOMAD_TOKEN), or an operator's."
	}
	policy, _, _ := policies.AppDeploy(m.app)
	return fmt.Sprintf("This token may not do this to app %s: it needs the policy %s on the namespace %q. "+
		"Use the app's deploy token (an operator makes one with `dyno apps:token --app %s`).",
		m.app, policy, tenancy.Namespace(m.app), m.app)
}

func (m *meta) printJSON(v any) int {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return m.fail(err)
	}
	m.ui.Output(string(b))
	return 0
}

// parseAssignments reads NAME=VALUE arguments.
func parseAssignments(args []string, what string) (map[string]string, error) {
	out := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not %s; write NAME=VALUE", a, what)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%s is given twice", k)
		}
		out[k] = v
	}
	return out, nil
}

// parseCounts reads process=count arguments of ps:scale.
func parseCounts(args []string) (map[string]int, error) {
	kv, err := parseAssignments(args, "a process type and a count")
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for k, v := range kv {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > appspec.MaxCount || strings.HasPrefix(v, "+") {
			return nil, fmt.Errorf("%s=%s: the count must be a whole number from 0 to %d", k, v, appspec.MaxCount)
		}
		counts[k] = n
	}
	return counts, nil
}

type uiWriterOut struct{ ui mcli.Ui }

func (w *uiWriterOut) Write(p []byte) (int, error) {
	w.ui.Output(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// appOnly parses the arguments of a command that takes flags only and is about one
// app, and returns the app. A code of 0 or more means the command must exit with it.
func (m *meta) appOnly(name string, args []string) (string, int) {
	fs := m.flagSet(name)
	if err := parseArgs(fs, args); err != nil || !noArgs(m.ui, fs) {
		return "", 1
	}
	app, err := m.appName()
	if err != nil {
		return "", m.fail(err)
	}
	return app, -1
}
