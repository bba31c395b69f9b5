package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/router/certapi"
)

// An app's certificates live in Nomad Variables of its namespace (certapi), which the
// router follows: a certificate added is served within moments, without a restart or
// a new release, and never stands in a job spec.

type certsCommand struct{ meta }

func (c *certsCommand) Synopsis() string { return "List an app's HTTPS certificates" }
func (c *certsCommand) Help() string {
	return `Usage: dyno certs [options]

  Lists the certificates the router serves for the app: the domain each was
  added for, the names it covers, when it expires and who issued it; and whether
  plain HTTP requests are redirected to HTTPS (dyno certs:redirect).
` + commonHelp
}

// certInfo is one certificate as dyno certs shows it.
type certInfo struct {
	Domain   string    `json:"domain"`
	Names    []string  `json:"names"`
	NotAfter time.Time `json:"not_after"`
	Issuer   string    `json:"issuer"`
	Problem  string    `json:"problem,omitempty"`
}

func (c *certsCommand) Run(args []string) int {
	app, code := c.appOnly("certs", args)
	if code >= 0 {
		return code
	}
	n, err := c.nomad(app)
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := interruptible()
	defer cancel()
	certs, redirect, err := readCerts(ctx, n)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return c.printJSON(struct {
			Certs    []certInfo `json:"certs"`
			Redirect bool       `json:"redirect_to_https"`
		}{certs, redirect})
	}
	c.ui.Output(fmt.Sprintf("=== %s certificates (redirect HTTP to HTTPS: %s)", app, onOff(redirect)))
	if len(certs) == 0 {
		c.ui.Output("none: the router serves its default certificate, if it covers the app's names")
	}
	for _, ci := range certs {
		line := fmt.Sprintf("%s  names=%s  expires=%s  issuer=%q", ci.Domain, strings.Join(ci.Names, ","),
			ci.NotAfter.UTC().Format(time.RFC3339), ci.Issuer)
		if ci.Problem != "" {
			line = fmt.Sprintf("%s  NOT SERVED: %s", ci.Domain, ci.Problem)
		}
		c.ui.Output(line)
	}
	return 0
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// readCerts reads the app's certificates (each checked as the router checks it) and its
// redirect setting.
func readCerts(ctx context.Context, n *nomadapi.Client) ([]certInfo, bool, error) {
	q := (&nomadapi.QueryOptions{}).WithContext(ctx)
	stubs, _, err := n.Variables().PrefixList(certapi.Prefix, q)
	if err != nil {
		return nil, false, fmt.Errorf("failed to list the app's certificates: %w", err)
	}
	var out []certInfo
	redirect := false
	for _, st := range stubs {
		v, _, err := n.Variables().Read(st.Path, q)
		if err != nil {
			return nil, false, fmt.Errorf("failed to read %s: %w", st.Path, err)
		}
		if st.Path == certapi.SettingsPath {
			redirect = v.Items[certapi.RedirectItem] == "true"
			continue
		}
		domain, ok := strings.CutPrefix(st.Path, certapi.CertPrefix)
		if !ok {
			continue
		}
		ci := certInfo{Domain: certapi.DomainOf(domain)}
		cert, err := certapi.Parse([]byte(v.Items[certapi.CertItem]), []byte(v.Items[certapi.KeyItem]), time.Now())
		if err != nil {
			ci.Problem = err.Error()
		} else {
			ci.Names, ci.NotAfter, ci.Issuer = cert.Names(), cert.Leaf.NotAfter, cert.Leaf.Issuer.String()
		}
		out = append(out, ci)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Domain < out[j].Domain })
	return out, redirect, nil
}

type certsAddCommand struct{ meta }

func (c *certsAddCommand) Synopsis() string { return "Add an HTTPS certificate to an app" }
func (c *certsAddCommand) Help() string {
	return `Usage: dyno certs:add [options] CERT KEY

  Adds a certificate (CERT: a PEM file, the certificate first and then its
  chain) and its private key (KEY: a PEM file) to the app. The router serves it
  for the names it covers that route to the app, within seconds. A certificate
  added again for the same domain replaces the previous one.

  The certificate is refused when it does not parse, is not the key's, is not
  valid yet or has expired, does not cover the domain, or the domain is not the
  app's: exactly <app>.<router domain>, one of the app's custom domains, or a
  wildcard whose parent is a custom domain's.

Options:
  --domain=NAME        The domain the certificate is for (default: its first
                       name)
  --router-domain=D    The grid's router domain (the router's -domain), which
                       <app>.D is checked against (default: $DYNO_ROUTER_DOMAIN,
                       or the local grid's when Nomad is the local grid's; with
                       none, only custom domains are accepted)
` + commonHelp
}

func (c *certsAddCommand) Run(args []string) int {
	fs := c.flagSet("certs:add")
	domain := fs.String("domain", "", "")
	routerDomainFlag := fs.String("router-domain", "", "")
	if err := parseArgs(fs, args); err != nil {
		return 1
	}
	if fs.NArg() != 2 {
		c.ui.Error("certs:add takes two files: the certificate and its key, for example `dyno certs:add server.crt server.key`")
		return 1
	}
	app, err := c.appName()
	if err != nil {
		return c.fail(err)
	}
	routerDomain, err := c.routerDomain(*routerDomainFlag)
	if err != nil {
		return c.fail(err)
	}
	certPEM, err := readPEMFile(fs.Arg(0), "certificate")
	if err != nil {
		return c.fail(err)
	}
	keyPEM, err := readPEMFile(fs.Arg(1), "key")
	if err != nil {
		return c.fail(err)
	}
	cert, err := certapi.Parse(certPEM, keyPEM, time.Now())
	if err != nil {
		return c.fail(fmt.Errorf("%s, %s: %w", fs.Arg(0), fs.Arg(1), err))
	}
	d := strings.ToLower(*domain)
	if d == "" {
		d = strings.ToLower(cert.Names()[0])
	}
	if err := certapi.CheckDomain(d); err != nil {
		return c.fail(fmt.Errorf("--domain: %w", err))
	}
	if !cert.Covers(strings.Replace(d, "*", "wildcard-check", 1)) {
		return c.fail(fmt.Errorf("the certificate covers %s, not %s", strings.Join(cert.Names(), ", "), d))
	}
	n, err := c.nomad(app)
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := interruptible()
	defer cancel()
	cur, err := c.deployerFor(n).Current(ctx, app)
	if err != nil {
		return c.fail(err)
	}
	if err := checkAppDomain(app, routerDomain, customDomains(cur.Job), d); err != nil {
		return c.fail(err)
	}
	v := &nomadapi.Variable{Path: certapi.CertPrefix + certapi.VariableName(d), Items: nomadapi.VariableItems{
		certapi.CertItem: string(cert.ChainPEM), certapi.KeyItem: string(cert.KeyPEM)}}
	if _, _, err := n.Variables().Create(v, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return c.fail(fmt.Errorf("failed to store the certificate: %w", err))
	}
	c.ui.Output(fmt.Sprintf("Added the certificate for %s to %s (names %s, expires %s)", d, app,
		strings.Join(cert.Names(), ","), cert.Leaf.NotAfter.UTC().Format(time.RFC3339)))
	return 0
}

// readPEMFile reads a certificate's or key's file, refusing one larger than a PEM
// chain may be.
func readPEMFile(path, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("the %s: %w", what, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, certapi.MaxPEMBytes+1))
	if err != nil {
		return nil, fmt.Errorf("the %s %s: %w", what, path, err)
	}
	if len(b) > certapi.MaxPEMBytes {
		return nil, fmt.Errorf("the %s %s: more than %d bytes", what, path, certapi.MaxPEMBytes)
	}
	return b, nil
}

// customDomains are the custom domains of the app's current release, from its web
// service's meta (what the router routes).
func customDomains(job *nomadapi.Job) []string {
	var out []string
	for _, tg := range job.TaskGroups {
		for _, task := range tg.Tasks {
			for _, s := range task.Services {
				if s.Name != deploy.ServiceName(*job.ID) {
					continue
				}
				for _, d := range strings.Split(s.Meta["domains"], ",") {
					if d = strings.ToLower(strings.TrimSpace(d)); d != "" {
						out = append(out, d)
					}
				}
			}
		}
	}
	return out
}

// routerDomain is the grid's router domain, the router's -domain: flag, else
// $DYNO_ROUTER_DOMAIN, else the local grid's when Nomad is the local grid's, else "" (not
// known). It is normalised as the router normalises its own.
func (m *meta) routerDomain(flag string) (string, error) {
	v, from := flag, "--router-domain"
	if v == "" {
		v, from = os.Getenv("DYNO_ROUTER_DOMAIN"), "$DYNO_ROUTER_DOMAIN"
	}
	if v == "" {
		g := m.localRouterGrid()
		if g == nil {
			return "", nil
		}
		v, from = g.Options.RouterDomain, "the local grid's router domain"
	}
	d := strings.ToLower(strings.Trim(v, "."))
	if err := certapi.CheckDomain(d); err != nil || strings.HasPrefix(d, "*") {
		return "", fmt.Errorf("%s %q: want the router's -domain, a DNS name such as \"apps.example.com\"", from, v)
	}
	return d, nil
}

// checkAppDomain says why a certificate for domain d may not be added to app, or nil
// when it may: d is exactly <app>.<routerDomain> (routerDomain "" when not known), one
// of the app's custom domains, or a wildcard whose parent is a custom domain's. The
// router serves an app's certificate only for the hosts that route to the app, whatever
// this check said; it refuses early what would never be served.
func checkAppDomain(app, routerDomain string, custom []string, d string) error {
	if routerDomain != "" && d == app+"."+routerDomain {
		return nil
	}
	for _, cd := range custom {
		if cd == d {
			return nil
		}
		if base, ok := strings.CutPrefix(d, "*."); ok {
			if _, parent, ok := strings.Cut(cd, "."); ok && parent == base {
				return nil
			}
		}
	}
	customs := "none"
	if len(custom) > 0 {
		customs = strings.Join(custom, ", ")
	}
	if routerDomain == "" {
		return fmt.Errorf("%s is not a domain of %s: it is none of the app's custom domains (%s), and the grid's router domain is not known "+
			"(for %s.<router domain>, pass --router-domain or set $DYNO_ROUTER_DOMAIN to the router's -domain)", d, app, customs, app)
	}
	return fmt.Errorf("%s is not a domain of %s: a certificate may be added for %s.%s or one of the app's custom domains (%s)",
		d, app, app, routerDomain, customs)
}

type certsRemoveCommand struct{ meta }

func (c *certsRemoveCommand) Synopsis() string { return "Remove an HTTPS certificate from an app" }
func (c *certsRemoveCommand) Help() string {
	return `Usage: dyno certs:remove [options] DOMAIN

  Removes the certificate added for DOMAIN (as dyno certs lists it). The router
  stops serving it within seconds.
` + commonHelp
}

func (c *certsRemoveCommand) Run(args []string) int {
	fs := c.flagSet("certs:remove")
	if err := parseArgs(fs, args); err != nil {
		return 1
	}
	if fs.NArg() != 1 {
		c.ui.Error("certs:remove takes the domain of the certificate, for example `dyno certs:remove www.example.com`")
		return 1
	}
	app, err := c.appName()
	if err != nil {
		return c.fail(err)
	}
	d := strings.ToLower(fs.Arg(0))
	if err := certapi.CheckDomain(d); err != nil {
		return c.fail(err)
	}
	n, err := c.nomad(app)
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := interruptible()
	defer cancel()
	path := certapi.CertPrefix + certapi.VariableName(d)
	q := (&nomadapi.QueryOptions{}).WithContext(ctx)
	if _, _, err := n.Variables().Read(path, q); err != nil {
		if errors.Is(err, nomadapi.ErrVariablePathNotFound) {
			return c.fail(fmt.Errorf("%s has no certificate for %s (see dyno certs)", app, d))
		}
		return c.fail(err)
	}
	if _, err := n.Variables().Delete(path, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return c.fail(fmt.Errorf("failed to remove the certificate: %w", err))
	}
	c.ui.Output(fmt.Sprintf("Removed the certificate for %s from %s", d, app))
	return 0
}

type certsRedirectCommand struct{ meta }

func (c *certsRedirectCommand) Synopsis() string {
	return "Redirect an app's HTTP requests to HTTPS, or stop"
}
func (c *certsRedirectCommand) Help() string {
	return `Usage: dyno certs:redirect [options] on|off

  With on, the router answers the app's plain HTTP requests with a redirect to
  the same URL over HTTPS (301 for GET and HEAD, 308 for other methods); with off
  (the default), it serves them.
` + commonHelp
}

func (c *certsRedirectCommand) Run(args []string) int {
	fs := c.flagSet("certs:redirect")
	if err := parseArgs(fs, args); err != nil {
		return 1
	}
	if fs.NArg() != 1 || fs.Arg(0) != "on" && fs.Arg(0) != "off" {
		c.ui.Error("certs:redirect takes on or off, for example `dyno certs:redirect on`")
		return 1
	}
	app, err := c.appName()
	if err != nil {
		return c.fail(err)
	}
	n, err := c.nomad(app)
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := interruptible()
	defer cancel()
	v := &nomadapi.Variable{Path: certapi.SettingsPath, Items: nomadapi.VariableItems{
		certapi.RedirectItem: fmt.Sprint(fs.Arg(0) == "on")}}
	if _, _, err := n.Variables().Create(v, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return c.fail(fmt.Errorf("failed to store the setting: %w", err))
	}
	c.ui.Output(fmt.Sprintf("Redirect of %s's HTTP requests to HTTPS: %s", app, fs.Arg(0)))
	return 0
}
