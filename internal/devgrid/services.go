package devgrid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/dynogrid/dynogrid/plugins/testserver"
	"github.com/dynogrid/dynogrid/policies"
)

// startRouter runs the grid's router on RouterPort (its metrics on the next port, its
// logs endpoint on the one after, HTTPS on the one after that), following the grid's Consul and Nomad, and waits
// until it accepts connections.
func (g *Grid) startRouter(ctx context.Context, t *Tokens) error {
	o := g.Options
	bin := filepath.Join(o.BinDir, "dyno-router")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("missing router binary (run `make build`): %w", err)
	}
	env := []string{"CONSUL_HTTP_TOKEN=" + t.Consul[policies.ConsulRouter], "NOMAD_TOKEN=" + t.Nomad[policies.NomadRouter]}
	ca, err := o.newGridCA()
	if err != nil {
		return fmt.Errorf("failed to make the grid's CA: %w", err)
	}
	certFile, keyFile, err := o.issue(ca, "router", o.RouterDomain, "*."+o.RouterDomain)
	if err != nil {
		return fmt.Errorf("failed to make the router's default certificate: %w", err)
	}
	args := []string{
		"-listen", o.RouterAddr(),
		"-tls-listen", o.RouterTLSAddr(),
		"-tls-cert", certFile,
		"-tls-key", keyFile,
		"-metrics-listen", fmt.Sprintf("%s:%d", o.Bind, o.RouterPort+1),
		"-logs-listen", o.RouterLogsAddr(),
		"-consul", o.ConsulAddr(),
		"-nomad", "http://" + o.NomadAddr(),
		"-domain", o.RouterDomain,
	}
	if o.RouterClusterID != "" {
		args = append(args, "-cluster", "-id", o.RouterClusterID)
		env[0] = "CONSUL_HTTP_TOKEN=" + t.Consul[policies.ConsulCluster]
	}
	if o.ACMEPort != 0 {
		if err := g.startPebble(ctx, ca); err != nil {
			return g.withLog("pebble", err)
		}
		args = append(args, "-acme-directory", o.ACMEDirectory(), "-acme-ca", o.RouterCAFile(),
			"-acme-account-key", filepath.Join(o.tlsDir(), "acme-account-key.pem"))
	}
	if err := g.start("router", env, bin, args...); err != nil {
		return err
	}
	return g.waitFor(ctx, "router", func(ctx context.Context) error {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", o.RouterAddr())
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// startMeter runs the meter, which records dyno time into Consul, when it is built.
func (g *Grid) startMeter(t *Tokens) error {
	bin := filepath.Join(g.Options.BinDir, "dyno-meter")
	if _, err := os.Stat(bin); err != nil {
		return nil
	}
	env := []string{"NOMAD_TOKEN=" + t.Nomad[policies.NomadMeter], "CONSUL_HTTP_TOKEN=" + t.Consul[policies.ConsulMeter]}
	return g.start("meter", env, bin, "-nomad-addr", "http://"+g.Options.NomadAddr(), "-consul-addr", g.Options.ConsulAddr())
}

// startLogDrain runs the log drain shipper, which sends the lines of apps with drains
// (their dynos' output and, with a router, their router lines), when it is built.
func (g *Grid) startLogDrain(t *Tokens) error {
	o := g.Options
	bin := filepath.Join(o.BinDir, "dyno-logdrain")
	if _, err := os.Stat(bin); err != nil {
		return nil
	}
	args := []string{"-nomad-addr", "http://" + o.NomadAddr()}
	if o.RouterPort != 0 {
		args = append(args, "-routers", "http://"+o.RouterLogsAddr())
	}
	if d := o.LogDrain; d.AllowNets != "" {
		args = append(args, "-allow-nets", d.AllowNets)
	}
	if d := o.LogDrain; d.CAFile != "" {
		args = append(args, "-ca-file", d.CAFile)
	}
	if d := o.LogDrain; d.MetricsPort != 0 {
		args = append(args, "-metrics-listen", fmt.Sprintf("%s:%d", o.Bind, d.MetricsPort))
	}
	if d := o.LogDrain; d.BufferBytes != 0 {
		args = append(args, "-buffer-bytes", strconv.Itoa(d.BufferBytes))
	}
	return g.start("logdrain", []string{"NOMAD_TOKEN=" + t.Nomad[policies.NomadLogDrain]}, bin, args...)
}

// startAutoscaler runs the autoscaler, which reads the grid's router's queue waits and
// scales through Nomad, when it is built.
func (g *Grid) startAutoscaler(t *Tokens) error {
	o := g.Options
	bin := filepath.Join(o.BinDir, "dyno-autoscaler")
	if _, err := os.Stat(bin); err != nil {
		return nil
	}
	args := []string{"-nomad-addr", "http://" + o.NomadAddr(), "-routers", fmt.Sprintf("%s:%d", o.Bind, o.RouterPort+1)}
	if o.AutoscalerMetricsPort != 0 {
		args = append(args, "-metrics-listen", fmt.Sprintf("%s:%d", o.Bind, o.AutoscalerMetricsPort))
	}
	env := []string{"NOMAD_TOKEN=" + t.Nomad[policies.NomadAutoscaler], "CONSUL_HTTP_TOKEN=" + t.Consul[policies.ConsulAutoscaler]}
	return g.start("autoscaler", env, bin, append(args, o.AutoscalerFlags...)...)
}

// startPostgres runs a PostgreSQL server for the postgres add-on and writes the grid's
// add-on settings: the server's admin URL, and the grid's Nomad for memcached.
func (g *Grid) startPostgres(ctx context.Context, t *Tokens) error {
	o := g.Options
	password := make([]byte, 18)
	if _, err := rand.Read(password); err != nil {
		return err
	}
	pgOpts := testserver.PostgresOptions{
		Port: o.PostgresPort, Dir: filepath.Join(o.DataDir, "postgres"),
		Password: hex.EncodeToString(password), Detach: true,
	}
	if n := o.Network; n != nil {
		// Dynos reach the server on the bridge's gateway, from their subnet.
		pgOpts.ExtraListen, pgOpts.AllowNetworks = []string{n.Gateway}, []string{n.Subnet}
	}
	pg, err := testserver.StartPostgres(ctx, pgOpts)
	if err != nil {
		return fmt.Errorf("failed to start PostgreSQL for the postgres add-on: %w", err)
	}
	g.Agents = append(g.Agents, Agent{Name: "postgres", PID: pg.PID(), Log: pg.LogPath})
	if err := g.save(); err != nil {
		return err
	}
	settings := map[string]map[string]string{
		"postgres": {"admin_url": pg.AdminURL("")},
		"memcached": {
			"nomad_addr":      "http://" + o.NomadAddr(),
			"nomad_token":     t.Nomad[policies.NomadAddonMemcached],
			"nomad_namespace": policies.AddonNamespace,
		},
	}
	if n := o.Network; n != nil {
		settings["postgres"]["public_host"] = n.Gateway
		settings["memcached"]["host_network"] = AddonHostNetwork
	}
	b, _ := json.MarshalIndent(settings, "", "  ")
	// The settings hold the admin password: readable by root only.
	return os.WriteFile(o.AddonConfig(), b, 0o600)
}
