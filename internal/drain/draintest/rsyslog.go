// Package draintest runs what tests of log drains send to: Debian's rsyslogd as a test
// process on loopback, with certificates made at test time for syslog+tls.
package draintest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/internal/testutil"
)

// Rsyslog is an rsyslogd of a test: it listens on loopback (imtcp, with TLS through the
// ossl driver when certified) and writes each message it receives to a file, one line
// each: hostname, app-name, procid and message.
type Rsyslog struct {
	dir string
	// Port is the port it listens on.
	Port int
	cmd  *exec.Cmd
}

// Cert is a certificate for 127.0.0.1 and localhost and the pool that trusts it.
type Cert struct {
	CertFile, KeyFile string
	Pool              *x509.CertPool
}

func NewCert(t testing.TB) *Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := &Cert{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"), Pool: x509.NewCertPool()}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(c.CertFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Pool.AppendCertsFromPEM(certPEM)
	return c
}

// StartRsyslog runs rsyslogd on port (0: any free one), with TLS when cert is not nil.
func StartRsyslog(t testing.TB, dir string, port int, cert *Cert) *Rsyslog {
	t.Helper()
	testutil.E2E(t, "runs Debian's rsyslogd", testutil.Program("rsyslogd"))
	r := &Rsyslog{dir: dir}
	global := fmt.Sprintf(`global(workDirectory=%q)`, dir)
	module := `module(load="imtcp" MaxSessions="20")`
	if cert != nil {
		global = fmt.Sprintf(`global(workDirectory=%q DefaultNetstreamDriver="ossl" DefaultNetstreamDriverCAFile=%q DefaultNetstreamDriverCertFile=%q DefaultNetstreamDriverKeyFile=%q)`,
			dir, cert.CertFile, cert.CertFile, cert.KeyFile)
		module = `module(load="imtcp" MaxSessions="20" StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")`
	}
	portFile := filepath.Join(dir, "port")
	_ = os.Remove(portFile)
	conf := strings.Join([]string{
		global, module,
		fmt.Sprintf(`input(type="imtcp" address="127.0.0.1" port="%d" listenPortFileName=%q ruleset="drain")`, port, portFile),
		`template(name="fields" type="string" string="%hostname% %app-name% %procid% %msg%\n")`,
		fmt.Sprintf(`ruleset(name="drain") { action(type="omfile" file=%q template="fields") }`, filepath.Join(dir, "out.log")),
	}, "\n")
	confFile := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confFile, []byte(conf+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "rsyslogd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	r.cmd = exec.Command("rsyslogd", "-n", "-f", confFile, "-i", filepath.Join(dir, "rsyslogd.pid"))
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("failed to start rsyslogd: %v", err)
	}
	t.Cleanup(r.Stop)
	testutil.WaitFor(t, 20*time.Second, "rsyslogd to listen", func() error {
		r.Port = port
		if port == 0 { // rsyslogd writes the port it took only when it chose it
			b, err := os.ReadFile(portFile)
			if err != nil {
				return err
			}
			if r.Port, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
				return fmt.Errorf("port file %q: %w", b, err)
			}
		}
		c, err := net.DialTimeout("tcp", r.Addr(), time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return r
}

// Addr is its address, host:port.
func (r *Rsyslog) Addr() string { return fmt.Sprintf("127.0.0.1:%d", r.Port) }

// Stop stops it.
func (r *Rsyslog) Stop() {
	if r.cmd.Process != nil && r.cmd.ProcessState == nil {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		_ = r.cmd.Wait()
	}
}

// Lines returns what rsyslogd received so far, one entry per message.
func (r *Rsyslog) Lines(t testing.TB) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(r.dir, "out.log"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// WaitLines waits until rsyslogd has received n messages and returns them.
func (r *Rsyslog) WaitLines(t testing.TB, n int) []string {
	t.Helper()
	var got []string
	testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("rsyslogd to receive %d messages", n), func() error {
		got = r.Lines(t)
		if len(got) < n {
			return fmt.Errorf("%d so far", len(got))
		}
		return nil
	})
	return got
}
