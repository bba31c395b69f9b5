// Package drain ships an app's log lines (its dynos' output and its router lines) to the
// log drains the app names: syslog over TCP or TLS (RFC 5424, octet-counted per RFC
// 6587) and HTTPS (batches, as Heroku's HTTPS drains post them). The drains of an app
// are a Nomad Variable of its namespace (store.go); the dyno-logdrain service follows
// the apps that have some (shipper.go) and sends to each (sender.go).
package drain

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Limits on what an app may ask for.
const (
	// MaxDrains is how many drains one app may have.
	MaxDrains = 5
	// MaxURLLen is the longest drain URL, in bytes.
	MaxURLLen = 1024
)

// Kinds of drain, by URL scheme.
const (
	Syslog    = "syslog"
	SyslogTLS = "syslog+tls"
	HTTPS     = "https"
)

// URL is a checked drain URL.
type URL struct {
	Kind string
	// Addr is host:port for a syslog drain.
	Addr string
	// URL is the whole URL, as given.
	URL *url.URL
}

// ParseURL checks a drain URL: syslog://host:port, syslog+tls://host:port or
// https://host[:port]/path?query. Its errors name what is wrong.
func ParseURL(raw string) (*URL, error) {
	if len(raw) > MaxURLLen {
		return nil, fmt.Errorf("drain URL of %d bytes: at most %d", len(raw), MaxURLLen)
	}
	for i, r := range raw {
		if r <= ' ' || r == 0x7f {
			return nil, fmt.Errorf("drain URL %q: a space or control character at byte %d", raw, i)
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("drain URL %q: %w", raw, err)
	}
	switch u.Scheme {
	case Syslog, SyslogTLS:
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			return nil, fmt.Errorf("drain URL %q: a %s drain is %s://host:port, with no user, path, query or fragment", raw, u.Scheme, u.Scheme)
		}
		if err := checkHostPort(u, true); err != nil {
			return nil, fmt.Errorf("drain URL %q: %w", raw, err)
		}
		return &URL{Kind: u.Scheme, Addr: u.Host, URL: u}, nil
	case HTTPS:
		if u.Opaque != "" || u.Fragment != "" {
			return nil, fmt.Errorf("drain URL %q: an https drain is https://host[:port]/path, with no fragment", raw)
		}
		if err := checkHostPort(u, false); err != nil {
			return nil, fmt.Errorf("drain URL %q: %w", raw, err)
		}
		return &URL{Kind: HTTPS, URL: u}, nil
	case "":
		return nil, fmt.Errorf("drain URL %q: no scheme: want syslog://, syslog+tls:// or https://", raw)
	default:
		return nil, fmt.Errorf("drain URL %q: scheme %q is not supported: want syslog://, syslog+tls:// or https://", raw, u.Scheme)
	}
}

func checkHostPort(u *url.URL, needPort bool) error {
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("no host")
	}
	if strings.ContainsAny(host, "%") {
		return fmt.Errorf("host %q: a zone is not allowed", host)
	}
	if net.ParseIP(host) == nil {
		for _, label := range strings.Split(strings.TrimSuffix(host, "."), ".") {
			if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") ||
				strings.IndexFunc(label, func(r rune) bool {
					return !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
				}) >= 0 {
				return fmt.Errorf("host %q is not a valid host name", host)
			}
		}
	}
	port := u.Port()
	if port == "" {
		if needPort {
			return fmt.Errorf("no port: a syslog drain names its port (host:port)")
		}
		return nil
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a port from 1 to 65535", port)
	}
	return nil
}

// Redacted is the URL with any password hidden, for logs.
func (u *URL) Redacted() string { return u.URL.Redacted() }
