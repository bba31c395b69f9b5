package testserver

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresOptions configure StartPostgres; the zero value works.
type PostgresOptions struct {
	// BinDir holds initdb and postgres; default: the newest /usr/lib/postgresql/*/bin.
	BinDir string
	// Port to listen on, on 127.0.0.1; default: a free one.
	Port int
	// Password of the superuser "postgres"; default: a fixed test password.
	Password string
	// Dir is where the server lives (created; must not exist or be empty); default: a
	// new temporary directory. Running as root, every parent must be searchable by
	// the postgres user. Stop removes it.
	Dir string
	// ExtraListen are addresses the server listens on besides 127.0.0.1.
	ExtraListen []string
	// AllowNetworks may connect over TCP with a password, besides 127.0.0.1 (CIDR
	// networks, written into pg_hba.conf).
	AllowNetworks []string
	// Detach runs the server in a session of its own, so that it outlives the calling
	// process (for `dyno dev up`); stop it then with SIGINT to PID.
	Detach bool
}

// AuthenticationTimeout is how long the server waits for a client to log in
// (authentication_timeout) before it closes the connection and frees its slot.
const AuthenticationTimeout = 10 * time.Second

// SuperuserReservedConnections of max_connections (100) only superusers may take: the
// postgres add-on's admin connection, when apps hold every other slot.
const SuperuserReservedConnections = 3

// Postgres is a running PostgreSQL server.
type Postgres struct {
	Dir      string // its directory (data, log, password file), removed by Stop
	Host     string
	Port     int
	User     string // superuser
	Password string
	LogPath  string // the server's log
	listen   string // listen_addresses
	cmd      *exec.Cmd
	done     chan struct{} // closed when the server has exited, with its status in exit
	exit     error
}

// PID is the postmaster's process ID.
func (p *Postgres) PID() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// AdminURL is a superuser connection URL to database db ("postgres" when "").
func (p *Postgres) AdminURL(db string) string {
	if db == "" {
		db = "postgres"
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(p.User, p.Password),
		Host: fmt.Sprintf("%s:%d", p.Host, p.Port), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// StartPostgres initialises a fresh cluster in a temporary directory and starts it,
// with durability off (tests only). It returns once the server accepts connections.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Postgres, error) {
	if opts.BinDir == "" {
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) < pgVersion(dirs[j]) })
		if len(dirs) == 0 {
			return nil, errors.New("no PostgreSQL server found in /usr/lib/postgresql (Debian package postgresql)")
		}
		opts.BinDir = dirs[len(dirs)-1]
	}
	if opts.Password == "" {
		opts.Password = "dyno-test-superuser"
	}
	dir := opts.Dir
	var err error
	if dir == "" {
		dir, err = os.MkdirTemp("", "dyno-postgres-")
	} else {
		err = os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to create the server directory: %w", err)
	}
	p := &Postgres{Dir: dir, Host: "127.0.0.1", User: "postgres", Password: opts.Password}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("failed to give the server directory to postgres: %w", err)
		}
	}
	pwfile := filepath.Join(dir, "pwfile")
	if err := writeOwned(pwfile, opts.Password+"\n", cred); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(opts.BinDir, "initdb"),
		"-D", data, "-U", "postgres", "--pwfile", pwfile, "--auth=scram-sha-256",
		"--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb failed: %w: %s", err, out)
	}
	if len(opts.AllowNetworks) > 0 {
		f, err := os.OpenFile(filepath.Join(data, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("failed to open pg_hba.conf: %w", err)
		}
		for _, n := range opts.AllowNetworks {
			fmt.Fprintf(f, "host all all %s scram-sha-256\n", n)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("failed to write pg_hba.conf: %w", err)
		}
	}
	p.listen = strings.Join(append([]string{"127.0.0.1"}, opts.ExtraListen...), ",")
	for attempt := 0; ; attempt++ {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, err
			}
		}
		err = p.start(ctx, opts.BinDir, port, cred, opts.Detach)
		if err == nil || opts.Port != 0 || attempt == 2 || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	ok = true
	return p, nil
}

func (p *Postgres) start(ctx context.Context, binDir string, port int, cred *syscall.Credential, detach bool) error {
	logPath := filepath.Join(p.Dir, "postgres.log")
	p.LogPath = logPath
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("failed to create the server log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(binDir, "postgres"), "-D", filepath.Join(p.Dir, "data"),
		"-p", strconv.Itoa(port), "-c", "listen_addresses="+p.listen,
		"-c", "unix_socket_directories="+p.Dir, "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=100", "-c", "shared_buffers=16MB",
		// A connection takes a slot of max_connections from its first packet, before
		// its password: one that never answers the challenge gives it back after
		// authentication_timeout (PostgreSQL's default: a minute). Clients log in within
		// milliseconds. The superuser's reserved slots keep the add-on's management
		// connection working when apps hold every other one (docs/security.md).
		"-c", "authentication_timeout="+AuthenticationTimeout.String(),
		"-c", "superuser_reserved_connections="+strconv.Itoa(SuperuserReservedConnections))
	cmd.Dir = p.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: !detach, Setsid: detach}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("failed to start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { p.exit = cmd.Wait(); close(done) }()
	p.Port, p.cmd, p.done = port, cmd, done

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("postgres exited while starting (%v): %s", p.exit, tailFile(logPath, 10))
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(cctx, p.AdminURL(""))
		cancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			_ = p.Stop() // the server's log says more than a failure to stop it
			return fmt.Errorf("postgres did not accept connections on port %d: %v: %s", port, err, tailFile(logPath, 10))
		}
		time.Sleep(pollInterval)
	}
}

// Stop shuts the server down (fast shutdown, then SIGKILL after 10 s) and removes its
// directory.
func (p *Postgres) Stop() error {
	var err error
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
			err = errors.New("postgres did not stop within 10s and was killed")
		}
		p.cmd = nil
	}
	if rerr := os.RemoveAll(p.Dir); rerr != nil && err == nil {
		err = fmt.Errorf("failed to remove %s: %w", p.Dir, rerr)
	}
	return err
}

// postgresCredential is the postgres user when running as root (PostgreSQL refuses to
// run as root), nil otherwise.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs a postgres user to run the server as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func writeOwned(path, content string, cred *syscall.Credential) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if cred != nil {
		if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("failed to chown %s: %w", path, err)
		}
	}
	return nil
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}
