package drain

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// SenderConfig is what every sender of a shipper shares.
type SenderConfig struct {
	// BufferBytes bounds the lines a drain holds while it is down or slow.
	BufferBytes int
	// Dialer opens connections to drains (its Control refuses addresses not allowed).
	Dialer *net.Dialer
	// TLS is the base TLS configuration (roots) of syslog+tls and https drains.
	TLS *tls.Config
	// MinBackoff and MaxBackoff bound the wait before a failed drain is tried again.
	MinBackoff, MaxBackoff time.Duration
}

// Batches: a syslog write or an HTTPS post carries at most this much.
const (
	batchFrames = 500
	batchBytes  = 1 << 20
	// httpsLinger is how long an HTTPS drain gathers lines into one post.
	httpsLinger = 200 * time.Millisecond
	ioTimeout   = 15 * time.Second
)

// Sender sends the lines given to it to one drain. Send never waits: while the drain is
// down, lines wait in a bounded buffer, and the oldest are dropped beyond it.
type Sender struct {
	Drain Drain
	url   *URL
	cfg   SenderConfig
	q     *queue
	sent  atomic.Uint64

	mu      sync.Mutex
	lastErr string

	conn   net.Conn // syslog
	client *http.Client
}

// NewSender makes the sender of d; Run sends.
func NewSender(d Drain, cfg SenderConfig) (*Sender, error) {
	u, err := ParseURL(d.URL)
	if err != nil {
		return nil, err
	}
	s := &Sender{Drain: d, url: u, cfg: cfg, q: newQueue(cfg.BufferBytes)}
	if u.Kind == HTTPS {
		s.client = &http.Client{
			Timeout: ioTimeout,
			Transport: &http.Transport{DialContext: cfg.Dialer.DialContext, TLSClientConfig: cfg.TLS.Clone(),
				TLSHandshakeTimeout: ioTimeout, MaxIdleConnsPerHost: 1, ForceAttemptHTTP2: true},
			// A drain answers; it does not send lines elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return s, nil
}

// Send queues a line for the drain.
func (s *Sender) Send(m Message) { s.q.push(m.Frame(s.Drain.Token)) }

// Status is the sender's counts.
func (s *Sender) Status() Status {
	waiting, dropped := s.q.counts()
	s.mu.Lock()
	defer s.mu.Unlock()
	return Status{Sent: s.sent.Load(), Dropped: dropped, Buffered: waiting, Error: s.lastErr}
}

// Run sends queued lines until ctx ends, connecting again with backoff after a failure.
func (s *Sender) Run(ctx context.Context) {
	defer s.closeConn()
	backoff := s.cfg.MinBackoff
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.q.wake:
		}
		for {
			if s.url.Kind == HTTPS {
				s.linger(ctx)
			}
			batch := s.q.take(batchFrames, batchBytes)
			if len(batch) == 0 {
				break
			}
			err := s.send(ctx, batch)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				s.sent.Add(uint64(len(batch)))
				s.setErr("")
				backoff = s.cfg.MinBackoff
				continue
			}
			s.q.unshift(batch)
			s.setErr(err.Error())
			select {
			case <-ctx.Done():
				return
			case <-time.After(jitter(backoff)):
			}
			backoff = min(backoff*2, s.cfg.MaxBackoff)
		}
	}
}

func (s *Sender) linger(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(httpsLinger):
	}
}

func (s *Sender) setErr(e string) {
	s.mu.Lock()
	s.lastErr = e
	s.mu.Unlock()
}

func (s *Sender) send(ctx context.Context, batch [][]byte) error {
	if s.url.Kind == HTTPS {
		return s.post(ctx, batch)
	}
	return s.write(ctx, batch)
}

// write sends frames on the syslog connection, opening it when there is none.
func (s *Sender) write(ctx context.Context, batch [][]byte) error {
	if s.conn == nil {
		c, err := s.dial(ctx)
		if err != nil {
			return err
		}
		s.conn = c
		// A syslog receiver says nothing: a read that ends means it closed the connection,
		// and closing ours makes the next write fail instead of vanishing.
		go func() {
			_, _ = io.Copy(io.Discard, c)
			c.Close()
		}()
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := (*net.Buffers)(&batch).WriteTo(s.conn); err != nil {
		s.closeConn()
		return fmt.Errorf("failed to write to %s: %w", s.url.Redacted(), err)
	}
	return nil
}

func (s *Sender) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	c, err := s.cfg.Dialer.DialContext(ctx, "tcp", s.url.Addr)
	if err != nil {
		return nil, fmt.Errorf("failed to connect to %s: %w", s.url.Redacted(), err)
	}
	if s.url.Kind != SyslogTLS {
		return c, nil
	}
	cfg := s.cfg.TLS.Clone()
	cfg.ServerName = s.url.URL.Hostname()
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("failed the TLS handshake with %s: %w", s.url.Redacted(), err)
	}
	return tc, nil
}

func (s *Sender) closeConn() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// post sends frames as one HTTPS request, as Heroku's HTTPS drains do.
func (s *Sender) post(ctx context.Context, batch [][]byte) error {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url.URL.String(), bytes.NewReader(bytes.Join(batch, nil)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/logplex-1")
	req.Header.Set("Logplex-Msg-Count", strconv.Itoa(len(batch)))
	req.Header.Set("Logplex-Frame-Id", hex.EncodeToString(id))
	req.Header.Set("Logplex-Drain-Token", s.Drain.Token)
	req.Header.Set("User-Agent", "dyno-logdrain")
	resp, err := s.client.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			err = ue.Unwrap() // the URL may hold a password: not in the error
		}
		return fmt.Errorf("failed to post to %s: %w", s.url.Redacted(), err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", s.url.Redacted(), resp.Status)
	}
	return nil
}

// jitter is d give or take a quarter.
func jitter(d time.Duration) time.Duration {
	var b [1]byte
	_, _ = rand.Read(b[:])
	return d*3/4 + d*time.Duration(b[0])/512
}
