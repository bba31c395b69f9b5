package memcached

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"time"
)

// Probe connects to the memcached at addr, authenticates when auth is on (ASCII
// protocol authentication: a "set" of "<username> <password>"), and asks for its
// version. It is also how a client authenticates, in any language:
//
//	set <any key> 0 0 <len>\r\n<username> <password>\r\n   ->  STORED
func Probe(ctx context.Context, addr, username, password string, auth bool) error {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(3 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = c.SetDeadline(deadline)
	r := bufio.NewReader(c)
	if auth {
		token := username + " " + password
		if _, err := fmt.Fprintf(c, "set auth 0 0 %d\r\n%s\r\n", len(token), token); err != nil {
			return err
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.TrimSpace(line) != "STORED" {
			return fmt.Errorf("authentication refused: %s", strings.TrimSpace(line))
		}
	}
	if _, err := c.Write([]byte("version\r\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "VERSION ") {
		return fmt.Errorf("unexpected answer to version: %q", strings.TrimSpace(line))
	}
	return nil
}
