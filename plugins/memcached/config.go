package memcached

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/plugins/addon"
)

// config is the operator's configuration of the add-on:
//
//	nomad_addr        (required) the Nomad HTTP API, e.g. http://127.0.0.1:4646
//	nomad_token       an ACL token that may submit jobs and write variables
//	nomad_namespace   the namespace of the memcached jobs (default "default")
//	nomad_region      the region (default: the agent's)
//	datacenters       comma-separated datacenters for the jobs (default "*")
//	memcached_path    memcached on the clients (default /usr/bin/memcached)
//	auth              "true" (default): memcached requires the credentials it
//	                  gets in MEMCACHED_USERNAME and MEMCACHED_PASSWORD (ASCII
//	                  protocol authentication); "false": no credentials
//	service_provider  "consul" (default), "nomad" or "none": where the job's
//	                  service addon-memcached-<app>-<id> is registered
//	host_network      the Nomad host network memcached binds on (default: the
//	                  client's default network); dynos in network namespaces need
//	                  one whose address they can reach
//	nomad_ca_file     the CA (PEM) that Nomad's HTTPS certificate is checked
//	                  against (default: the system's), as NOMAD_CACERT is for
//	                  Nomad's CLI
//	nomad_client_cert, nomad_client_key
//	                  a client certificate and its key (PEM), for a Nomad that
//	                  checks HTTPS clients' certificates
//	nomad_tls_server_name
//	                  the name Nomad's certificate is checked for (default: the
//	                  host of nomad_addr)
type config struct {
	nomadAddr       string
	nomadToken      string
	namespace       string
	region          string
	datacenters     []string
	memcachedPath   string
	auth            bool
	serviceProvider string
	hostNetwork     string
	// tls is Nomad's HTTPS settings, or nil for the system's CAs.
	tls *api.TLSConfig
}

var knownSettings = []string{"auth", "datacenters", "host_network", "memcached_path", "nomad_addr", "nomad_ca_file",
	"nomad_client_cert", "nomad_client_key", "nomad_namespace", "nomad_region", "nomad_tls_server_name", "nomad_token", "service_provider"}

func parseConfig(c addon.Config) (config, error) {
	for k := range c.Settings {
		if !slices.Contains(knownSettings, k) {
			return config{}, fmt.Errorf("unknown setting %q (known: %s)", k, strings.Join(knownSettings, ", "))
		}
	}
	cfg := config{
		nomadAddr:       c.Get("nomad_addr", ""),
		nomadToken:      c.Get("nomad_token", ""),
		namespace:       c.Get("nomad_namespace", "default"),
		region:          c.Get("nomad_region", ""),
		memcachedPath:   c.Get("memcached_path", "/usr/bin/memcached"),
		serviceProvider: c.Get("service_provider", "consul"),
		hostNetwork:     c.Get("host_network", ""),
	}
	if cfg.nomadAddr == "" {
		return config{}, fmt.Errorf("setting %q is required: the Nomad HTTP API, such as http://127.0.0.1:4646", "nomad_addr")
	}
	u, err := url.Parse(cfg.nomadAddr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return config{}, fmt.Errorf("setting %q is not an http(s):// URL: %q", "nomad_addr", cfg.nomadAddr)
	}
	if cfg.tls, err = parseTLS(c, u.Scheme == "https"); err != nil {
		return config{}, err
	}
	for _, dc := range strings.Split(c.Get("datacenters", "*"), ",") {
		if dc = strings.TrimSpace(dc); dc != "" {
			cfg.datacenters = append(cfg.datacenters, dc)
		}
	}
	if len(cfg.datacenters) == 0 {
		return config{}, fmt.Errorf("setting %q names no datacenter", "datacenters")
	}
	if !filepath.IsAbs(cfg.memcachedPath) {
		return config{}, fmt.Errorf("setting %q must be an absolute path: %q", "memcached_path", cfg.memcachedPath)
	}
	auth, err := strconv.ParseBool(c.Get("auth", "true"))
	if err != nil {
		return config{}, fmt.Errorf("setting %q is not true or false: %q", "auth", c.Settings["auth"])
	}
	cfg.auth = auth
	switch cfg.serviceProvider {
	case "consul", "nomad", "none":
	default:
		return config{}, fmt.Errorf("setting %q must be consul, nomad or none: %q", "service_provider", cfg.serviceProvider)
	}
	return cfg, nil
}

// parseTLS is the Nomad client's TLS configuration from the nomad_ca_file,
// nomad_client_cert, nomad_client_key and nomad_tls_server_name settings, or nil when
// none is set. The Nomad API package reads the files, as it does NOMAD_CACERT and the
// others for Nomad's CLI and dyno's: the add-on gets no environment variable of the
// operator's (docs/addons.md), so it takes the same settings from its configuration.
func parseTLS(c addon.Config, https bool) (*api.TLSConfig, error) {
	t := &api.TLSConfig{
		CACert:        c.Get("nomad_ca_file", ""),
		ClientCert:    c.Get("nomad_client_cert", ""),
		ClientKey:     c.Get("nomad_client_key", ""),
		TLSServerName: c.Get("nomad_tls_server_name", ""),
	}
	if t.CACert == "" && t.ClientCert == "" && t.ClientKey == "" && t.TLSServerName == "" {
		return nil, nil
	}
	for name, v := range map[string]string{"nomad_ca_file": t.CACert, "nomad_client_cert": t.ClientCert, "nomad_client_key": t.ClientKey} {
		if v != "" && !filepath.IsAbs(v) {
			return nil, fmt.Errorf("setting %q must be an absolute path: %q", name, v)
		}
	}
	if (t.ClientCert == "") != (t.ClientKey == "") {
		return nil, fmt.Errorf("settings %q and %q go together: set both or neither", "nomad_client_cert", "nomad_client_key")
	}
	if !https {
		return nil, fmt.Errorf("settings nomad_ca_file, nomad_client_cert, nomad_client_key and nomad_tls_server_name need an https:// %q", "nomad_addr")
	}
	return t, nil
}
