// Package drain ships an app's log lines (its dynos' output and its router lines) to the
// log drains the app names: syslog over TCP or TLS (RFC 5424, octet-counted per RFC
// 6587) and HTTPS (batches, as Heroku's HTTPS drains post them). The drains of an app
// are a Nomad Variable of its namespace (store.go); the dyno-logdrain service follows
// the apps that have some (shipper.go) and sends to each (sender.go).
package drain

import (
	"errors"
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
// https://host[:port]/path?query. Its errors name what is wrong, and show the URL with
// its password hidden (they are logged).
func ParseURL(raw string) (*URL, error) {
	if len(raw) > MaxURLLen {
		return nil, fmt.Errorf("drain URL of %d bytes: at most %d", len(raw), MaxURLLen)
	}
	shown := redact(raw)
	for i, r := range raw {
		if r <= ' ' || r == 0x7f {
			return nil, fmt.Errorf("drain URL %q: a space or control character at byte %d", shown, i)
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message holds the whole URL
		}
		return nil, fmt.Errorf("drain URL %q: %w", shown, err)
	}
	switch u.Scheme {
	case Syslog, SyslogTLS:
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			return nil, fmt.Errorf("drain URL %q: a %s drain is %s://host:port, with no user, path, query or fragment", shown, u.Scheme, u.Scheme)
		}
		if err := checkHostPort(u, true); err != nil {
			return nil, fmt.Errorf("drain URL %q: %w", shown, err)
		}
		return &URL{Kind: u.Scheme, Addr: u.Host, URL: u}, nil
	case HTTPS:
		if u.Opaque != "" || u.Fragment != "" {
			return nil, fmt.Errorf("drain URL %q: an https drain is https://host[:port]/path, with no fragment", shown)
		}
		if err := checkHostPort(u, false); err != nil {
			return nil, fmt.Errorf("drain URL %q: %w", shown, err)
		}
		return &URL{Kind: HTTPS, URL: u}, nil
	case "":
		return nil, fmt.Errorf("drain URL %q: no scheme: want syslog://, syslog+tls:// or https://", shown)
	default:
		return nil, fmt.Errorf("drain URL %q: scheme %q is not supported: want syslog://, syslog+tls:// or https://", shown, u.Scheme)
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
		if endsInNumber(host) {
			return fmt.Errorf("host %q reads as an IPv4 address in a decimal, octal or hex form: write an address as four decimal numbers (192.0.2.1)", host)
		}
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

// endsInNumber says whether a host that is not an IP address would still be read as an
// IPv4 address by some resolvers (inet_aton's "127.1", "2130706433", "0x7f.1", "0177.0.0.1"):
// its last label is a decimal or hex number, which no domain's top-level label is.
func endsInNumber(host string) bool {
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	last := strings.ToLower(labels[len(labels)-1])
	if hex, ok := strings.CutPrefix(last, "0x"); ok {
		return strings.Trim(hex, "0123456789abcdef") == ""
	}
	return last != "" && strings.Trim(last, "0123456789") == ""
}

// redact hides the password of a drain URL that may not parse: what lies between the
// scheme's "//" and the last "@" of the authority keeps its user only.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	_, rest, ok := strings.Cut(raw, "//")
	if !ok {
		return raw
	}
	auth, _, _ := strings.Cut(rest, "/")
	at := strings.LastIndexByte(auth, '@')
	if at < 0 {
		return raw
	}
	user, _, hasPass := strings.Cut(auth[:at], ":")
	if !hasPass {
		return raw
	}
	start := len(raw) - len(rest)
	return raw[:start] + user + ":xxxxx" + raw[start+at:]
}

// Redacted is the URL with any password hidden, for logs.
func (u *URL) Redacted() string { return u.URL.Redacted() }
