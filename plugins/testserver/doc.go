// Package testserver starts real backing services for tests and the local grid: a
// PostgreSQL server (Debian's postgresql package) and memcached, each on a free
// loopback port in its own temporary directory, stopped by Stop. Running as root, it
// runs PostgreSQL as the postgres user and memcached as nobody.
//
// The Start functions take a context and return errors; the T helpers start a server
// for one test and stop it in t.Cleanup.
package testserver

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("failed to find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailFile returns the last lines of a log file, for error messages.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// pollInterval is how often servers are probed while they start.
const pollInterval = 50 * time.Millisecond
