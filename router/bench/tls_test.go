package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/router/loadgen"
)

// BenchmarkTLS compares dyno-router with HAProxy, both terminating TLS (TLS 1.3 by
// default, an ECDSA P-256 certificate, ALPN h2 and http/1.1) in front of the same 8
// single-request dynos, each pinned to the same one core, in the same run and
// interleaved (medians of the rounds): full handshakes per second (no resumption, 8
// concurrent clients, each connection closed after its handshake) and the proxy's CPU
// per handshake; CPU per request over kept-alive TLS (one sequential HTTP/1.1 client,
// zero service time); HTTP/2 with many streams on one connection (100 concurrent
// streams, zero service time: every stream waits in the app's queue for one of the 8
// dynos); and the queueing load of BenchmarkRouting at 0.9 over HTTPS (HTTP/1.1, open
// loop), whose p99 is compared with the ideal single queue of the same trace.
func BenchmarkTLS(b *testing.B) {
	requireHAProxy(b)
	bs, err := loadgen.StartBackends(dynos)
	if err != nil {
		b.Fatal(err)
	}
	defer loadgen.StopBackends(bs)
	ca := testutil.NewCA(b)
	certPEM, keyPEM := ca.IssueNow(b, "bench.localhost")
	dir := b.TempDir()
	certFile, keyFile, bundle := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "haproxy.pem")
	for path, data := range map[string][]byte{certFile: certPEM, keyFile: keyPEM, bundle: append(append([]byte{}, certPEM...), keyPEM...)} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	core := cpuCore()
	tlsAddr := freeAddr(b)
	router := startRouterWith(b, bs, core, "-tls-listen", tlsAddr, "-tls-cert", certFile, "-tls-key", keyFile)
	router.addr = tlsAddr
	haproxy := startHAProxyWith(b, "haproxy leastconn", bs, "leastconn", true, core, " ssl crt "+bundle+" alpn h2,http/1.1 ssl-min-ver TLSv1.2", "")
	procs := []*proc{router, haproxy}
	tlsCfg := &tls.Config{RootCAs: ca.Pool, ServerName: "bench.localhost"}
	h1 := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg,
		MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, DisableCompression: true,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	for _, p := range procs {
		if err := loadgen.Warm(h1, tlsTarget(p), warmCPU); err != nil {
			b.Fatalf("%s: %v", p.name, err)
		}
	}
	const (
		handshakes = 2000
		sequential = 5000
		h2Requests = 5000
		h2Streams  = 100
	)
	queueing := loadgen.Poisson(seed, requests(), loadgen.RateFor(0.9, dynos, meanService), meanService)
	machine := testutil.MachineState()
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	var rows []string
	for i := 0; i < b.N; i++ {
		// Handshakes.
		rate := make([][]float64, len(procs))
		hcpu := make([][]time.Duration, len(procs))
		for round := 0; round < rounds(); round++ {
			for pi, p := range procs {
				before, _ := cpuTime(p.cmd.Process.Pid)
				r, err := handshakeRate(p.addr, tlsCfg, handshakes, 8)
				after, _ := cpuTime(p.cmd.Process.Pid)
				if err != nil {
					b.Fatalf("%s handshakes: %v", p.name, err)
				}
				rate[pi] = append(rate[pi], r)
				hcpu[pi] = append(hcpu[pi], (after-before)/handshakes)
			}
		}
		rr, hr := medianFloat(rate[0]), medianFloat(rate[1])
		rc, hc := medianDuration(hcpu[0]), medianDuration(hcpu[1])
		rows = append(rows, fmt.Sprintf("| full TLS handshakes, 8 concurrent clients | %.0f/s, %.0f us | %.0f/s, %.0f us | %.2f | %.2f | - |",
			rr, us(rc), hr, us(hc), rr/hr, float64(rc)/float64(hc)))
		b.ReportMetric(rr/hr, "router/haproxy-handshakes")

		// Kept-alive HTTP/1.1 over TLS, sequential; HTTP/2, many streams; queueing.
		for _, rg := range []struct {
			name, key string
			n         int
			run       func(p *proc) ([]time.Duration, int, error)
			ideal     bool
		}{
			{"kept-alive TLS, HTTP/1.1, one sequential client", "keepalive", sequential, func(p *proc) ([]time.Duration, int, error) {
				lat, err := loadgen.Sequential(h1, tlsTarget(p), sequential)
				return lat, sequential - len(lat), err
			}, false},
			{fmt.Sprintf("HTTP/2, %d streams at once on one connection", h2Streams), "h2", h2Requests, func(p *proc) ([]time.Duration, int, error) {
				return h2Run(p.addr, tlsCfg, h2Requests, h2Streams)
			}, false},
			{fmt.Sprintf("queueing over HTTPS: load 0.9, %.0f req/s open loop", loadgen.RateFor(0.9, dynos, meanService)), "queueing", len(queueing), func(p *proc) ([]time.Duration, int, error) {
				return loadgen.Run(context.Background(), h1, tlsTarget(p), queueing)
			}, true},
		} {
			cpu := make([][]time.Duration, len(procs))
			p99 := make([][]time.Duration, len(procs))
			for round := 0; round < rounds(); round++ {
				for pi, p := range procs {
					before, _ := cpuTime(p.cmd.Process.Pid)
					lat, errs, err := rg.run(p)
					after, _ := cpuTime(p.cmd.Process.Pid)
					if errs > 0 {
						b.Errorf("%s, %s: %d requests failed (first: %v)", p.name, rg.name, errs, err)
					}
					cpu[pi] = append(cpu[pi], (after-before)/time.Duration(rg.n))
					p99[pi] = append(p99[pi], loadgen.Summarise(lat, errs).P99)
				}
			}
			rc, hc := medianDuration(cpu[0]), medianDuration(cpu[1])
			rp, hp := medianDuration(p99[0]), medianDuration(p99[1])
			ideal := "-"
			if rg.ideal {
				ip := loadgen.Summarise(loadgen.Ideal(queueing, dynos), 0).P99
				ideal = fmt.Sprintf("%.2f / %.2f", float64(rp)/float64(ip), float64(hp)/float64(ip))
			}
			rows = append(rows, fmt.Sprintf("| %s | %.0f us, p99 %.2f ms | %.0f us, p99 %.2f ms | - | %.2f | %s |",
				rg.name, us(rc), ms(rp), us(hc), ms(hp), float64(rc)/float64(hc), ideal))
			b.ReportMetric(float64(rc)/float64(hc), "router/haproxy-cpu-"+rg.key)
		}
	}
	fmt.Printf("\nBenchmarkTLS: each proxy pinned to core %d of %d, CPU from its own accounting (schedstat); median of %d interleaved rounds; before the run: %s; after: %s\n",
		core, runtime.NumCPU(), rounds(), machine, testutil.MachineState())
	fmt.Println("| regime | dyno-router | HAProxy | router/HAProxy rate | router/HAProxy CPU | p99/ideal router / HAProxy |")
	fmt.Println("|---|---|---|---|---|---|")
	fmt.Println(strings.Join(rows, "\n"))
}

func tlsTarget(p *proc) loadgen.Target {
	return loadgen.Target{Name: p.name, URL: "https://" + p.addr + "/", Host: "bench.localhost"}
}

// handshakeRate makes n full TLS handshakes with addr from c clients at once, each on a
// new connection closed after it, and returns how many per second were made.
func handshakeRate(addr string, cfg *tls.Config, n, c int) (float64, error) {
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				conn.Close()
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds(), firstErr
}

// h2Run sends n GET requests over one HTTP/2 connection, streams at once, and returns
// the latencies of those answered 200 and how many were not.
func h2Run(addr string, cfg *tls.Config, n, streams int) ([]time.Duration, int, error) {
	var protos http.Protocols
	protos.SetHTTP2(true)
	tr := &http.Transport{TLSClientConfig: cfg.Clone(), Protocols: &protos, MaxConnsPerHost: 1,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}}
	defer tr.CloseIdleConnections()
	cc := &http.Client{Transport: tr, Timeout: time.Minute}
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < streams; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				req, _ := http.NewRequest(http.MethodGet, "https://bench.localhost/", nil)
				t0 := time.Now()
				resp, err := cc.Do(req)
				if err == nil && resp.ProtoMajor != 2 {
					err = fmt.Errorf("answered over %s", resp.Proto)
				}
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
				} else {
					lat = append(lat, time.Since(t0))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return lat, n - len(lat), firstErr
}

func medianFloat(fs []float64) float64 {
	s := slices.Clone(fs)
	slices.Sort(s)
	return s[len(s)/2]
}
