package testserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MemcachedOptions configure StartMemcached; the zero value works.
type MemcachedOptions struct {
	// Binary is the memcached program; default /usr/bin/memcached.
	Binary string
	// Port on 127.0.0.1; default: a free one.
	Port int
	// MemoryMB is the cache size; default 16.
	MemoryMB int
	// ExtraArgs are added to the command line (e.g. "-Y", authfile).
	ExtraArgs []string
}

// Memcached is a running memcached.
type Memcached struct {
	Addr string // host:port
	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed when memcached has exited, with its status in exit
	exit error
}

// StartMemcached starts memcached on loopback and returns once it answers "version".
func StartMemcached(ctx context.Context, opts MemcachedOptions) (*Memcached, error) {
	if opts.Binary == "" {
		opts.Binary = "/usr/bin/memcached"
	}
	if opts.MemoryMB == 0 {
		opts.MemoryMB = 16
	}
	dir, err := os.MkdirTemp("", "dyno-memcached-")
	if err != nil {
		return nil, fmt.Errorf("failed to create the server directory: %w", err)
	}
	var lastErr error
	for attempt := 0; attempt < 3 && ctx.Err() == nil; attempt++ {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				os.RemoveAll(dir)
				return nil, err
			}
		}
		m, err := startMemcached(ctx, opts, dir, port)
		if err == nil {
			return m, nil
		}
		lastErr = err
		if opts.Port != 0 {
			break
		}
	}
	os.RemoveAll(dir)
	if lastErr == nil {
		lastErr = ctx.Err()
	}
	return nil, lastErr
}

func startMemcached(ctx context.Context, opts MemcachedOptions, dir string, port int) (*Memcached, error) {
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", strconv.Itoa(opts.MemoryMB)}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	args = append(args, opts.ExtraArgs...)
	logPath := filepath.Join(dir, "memcached.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("failed to create the server log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(opts.Binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start memcached: %w", err)
	}
	m := &Memcached{Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() { m.exit = cmd.Wait(); close(m.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-m.done:
			return nil, fmt.Errorf("memcached exited while starting (%v): %s", m.exit, tailFile(logPath, 10))
		default:
		}
		if _, err := MemcachedVersion(ctx, m.Addr); err == nil {
			return m, nil
		} else if ctx.Err() != nil || time.Now().After(deadline) {
			m.kill()
			return nil, fmt.Errorf("memcached did not answer on %s: %w", m.Addr, err)
		}
		time.Sleep(pollInterval)
	}
}

// MemcachedVersion asks the memcached at addr for its version (ASCII protocol).
func MemcachedVersion(ctx context.Context, addr string) (string, error) {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("version\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(line), "VERSION ")
	if !ok {
		return "", fmt.Errorf("unexpected answer to version: %q", line)
	}
	return v, nil
}

func (m *Memcached) kill() {
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
	<-m.done
}

// Stop stops memcached and removes its directory.
func (m *Memcached) Stop() error {
	var err error
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		m.kill()
		err = errors.New("memcached did not stop within 5s and was killed")
	}
	os.RemoveAll(m.dir)
	return err
}
