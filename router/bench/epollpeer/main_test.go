package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestProxiesOneRequestPerBackend sends concurrent requests through the peer, with
// each way its loop waits (on its thread, and parked in Go's poller through package
// evloop): every one is answered, carries the router's headers, and no backend ever
// holds two at once.
func TestProxiesOneRequestPerBackend(t *testing.T) {
	for name, serve := range map[string]func(string, []string) error{"raw wait": run, "evloop": runOnEvloop} {
		t.Run(name, func(t *testing.T) { proxiesOneRequestPerBackend(t, serve) })
	}
}

func proxiesOneRequestPerBackend(t *testing.T, serve func(listen string, backends []string) error) {
	var inflight, overlaps, served atomic.Int32
	var missing atomic.Value
	backend := func() *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if inflight.Add(1) > 1 {
				overlaps.Add(1)
			}
			defer inflight.Add(-1)
			for _, h := range []string{"X-Request-Id", "X-Request-Start", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Port"} {
				if r.Header.Get(h) == "" {
					missing.Store(h)
				}
			}
			time.Sleep(time.Millisecond)
			served.Add(1)
			w.Header().Set("Content-Length", "2")
			io.WriteString(w, "ok")
		}))
	}
	// One backend: the peer must queue.
	b := backend()
	defer b.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	go serve(addr, []string{b.Listener.Addr().String()})
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the peer does not listen on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	const clients, each = 8, 20
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				resp, err := client.Get("http://" + addr + "/")
				if err != nil {
					failed.Add(1)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(body) != "ok" {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d requests failed", n, clients*each)
	}
	if n := served.Load(); n != clients*each {
		t.Errorf("the backend served %d requests, want %d", n, clients*each)
	}
	if n := overlaps.Load(); n > 0 {
		t.Errorf("the backend held two requests at once %d times", n)
	}
	if h := missing.Load(); h != nil {
		t.Errorf("a request reached the backend without %s", h)
	}
}
