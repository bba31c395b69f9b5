package router

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// ParseStatic reads a static route, "<app>=<host:port>[,<host:port>...]", for running
// without Consul (development, benchmarks). The dynos are named web.1, web.2, ...
func ParseStatic(s string) (string, []Instance, error) {
	app, list, ok := strings.Cut(s, "=")
	app = strings.TrimSpace(app)
	if !ok || app == "" || strings.ContainsAny(app, ". /:") {
		return "", nil, fmt.Errorf("static route %q: want <app>=<host:port>[,<host:port>...]", s)
	}
	var insts []Instance
	for i, addr := range strings.Split(list, ",") {
		addr = strings.TrimSpace(addr)
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return "", nil, fmt.Errorf("static route %q: dyno %d %q: %w", s, i+1, addr, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p <= 0 || p > 65535 {
			return "", nil, fmt.Errorf("static route %q: dyno %d %q: bad port", s, i+1, addr)
		}
		name := "web." + strconv.Itoa(i+1)
		insts = append(insts, Instance{ID: app + "-" + name, Dyno: name, Address: host, Port: p})
	}
	return app, insts, nil
}
