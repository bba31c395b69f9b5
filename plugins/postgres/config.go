package postgres

import (
	"fmt"
	"net"
	"net/url"
	"strconv"

	"github.com/dynogrid/dynogrid/plugins/addon"
)

// config is the operator's configuration of the add-on:
//
//	admin_url    (required) a connection URL of a superuser, e.g.
//	             postgres://postgres:secret@db.internal:5432/postgres?sslmode=require;
//	             the add-on keeps its records in schema "dynogrid" of that database
//	public_host  the host apps connect to (default: the admin URL's host)
//	public_port  the port apps connect to (default: the admin URL's port, or 5432)
//	sslmode      sslmode in DATABASE_URL (default: the admin URL's, or "prefer")
type config struct {
	adminURL   string
	publicHost string
	publicPort int
	sslmode    string
}

var knownSettings = map[string]bool{"admin_url": true, "public_host": true, "public_port": true, "sslmode": true}

func parseConfig(c addon.Config) (config, error) {
	for k := range c.Settings {
		if !knownSettings[k] {
			return config{}, fmt.Errorf("unknown setting %q (known: admin_url, public_host, public_port, sslmode)", k)
		}
	}
	raw := c.Get("admin_url", "")
	if raw == "" {
		return config{}, fmt.Errorf("setting %q is required: a superuser connection URL such as postgres://postgres:secret@127.0.0.1:5432/postgres", "admin_url")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return config{}, fmt.Errorf("setting %q is not a postgres:// URL with a host", "admin_url")
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "5432"
	}
	cfg := config{adminURL: raw, publicHost: c.Get("public_host", host)}
	if cfg.publicPort, err = strconv.Atoi(c.Get("public_port", port)); err != nil || cfg.publicPort < 1 || cfg.publicPort > 65535 {
		return config{}, fmt.Errorf("setting %q is not a port number", "public_port")
	}
	if net.ParseIP(cfg.publicHost) == nil && !validHostname(cfg.publicHost) {
		return config{}, fmt.Errorf("setting %q is not a host name or address: %q", "public_host", cfg.publicHost)
	}
	cfg.sslmode = c.Get("sslmode", u.Query().Get("sslmode"))
	if cfg.sslmode == "" {
		cfg.sslmode = "prefer"
	}
	switch cfg.sslmode {
	case "disable", "allow", "prefer", "require", "verify-ca", "verify-full":
	default:
		return config{}, fmt.Errorf("setting %q has an unknown mode %q", "sslmode", cfg.sslmode)
	}
	return cfg, nil
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}
