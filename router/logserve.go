package router

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/apierr"
	"github.com/dynogrid/dynogrid/router/logapi"
)

// Limits of the logs endpoint.
const (
	maxLogsWait = time.Minute // the longest a reader may wait for a new line
	maxLogsNum  = ringLines
	// maxLogsReaders bounds the requests of one app the endpoint serves at once, waiting
	// for its next line or being answered; more are answered 429 (each holds a
	// connection, a goroutine and one of Config.LogsMaxReaders), so that one app's key
	// cannot take every reader's slot.
	maxLogsReaders = 32
	// A key the router holds is read again from Nomad after logKeyTTL, and a key that
	// does not match is looked up again at most every logKeyRetry.
	logKeyTTL   = 10 * time.Second
	logKeyRetry = time.Second
)

var appNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,28}[a-z0-9]$`)

// logsHandler serves GET logapi.Path<app>?after=N&epoch=E&num=N&wait=D with
// "Authorization: Bearer <the app's router log key>": the app's lines after sequence
// number after (the last num when after is 0), waiting up to wait for one when there is
// none yet.
//
// Only holders of a key hold the router's resources while they wait: at most
// Config.LogsMaxReaders requests at once over all apps (503 beyond), maxLogsReaders per
// app (429 beyond). Every write of an answer must be done within Config.LogsWriteTimeout,
// so a reader that stops reading is dropped and its slot freed.
func (r *Router) logsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(logapi.Path, func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			http.Error(w, "only GET", http.StatusMethodNotAllowed)
			return
		}
		app := strings.TrimPrefix(req.URL.Path, logapi.Path)
		if !appNameRE.MatchString(app) {
			http.Error(w, "the path must name an app: "+logapi.Path+"<app>", http.StatusBadRequest)
			return
		}
		q := req.URL.Query()
		after, num, wait, err := logsQuery(q)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		key, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		if !ok || key == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dyno-router"`)
			http.Error(w, "send the app's router log key: Authorization: Bearer <key>", http.StatusUnauthorized)
			return
		}
		switch ok, err := r.checkLogKey(req.Context(), app, key); {
		case err != nil:
			r.log.Warn("failed to read an app's router log key", "app", app, "error", err)
			http.Error(w, "the router could not read the app's key from Nomad", http.StatusServiceUnavailable)
			return
		case !ok:
			http.Error(w, "not the router log key of app "+app, http.StatusForbidden)
			return
		}
		if r.logReaders.Add(1) > int64(r.cfg.LogsMaxReaders) {
			r.logReaders.Add(-1)
			r.metrics.logsRefused.Inc()
			w.Header().Set("Retry-After", "1")
			http.Error(w, "the router serves "+strconv.Itoa(r.cfg.LogsMaxReaders)+" log readers at once, its most; try again", http.StatusServiceUnavailable)
			return
		}
		defer r.logReaders.Add(-1)
		if e := q.Get("epoch"); e != "" && e != r.epoch {
			after = 0
		}
		ring := r.logRings.ring(app)
		if ring.readers.Add(1) > maxLogsReaders {
			ring.readers.Add(-1)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "too many readers of the lines of app "+app+" at once; try again", http.StatusTooManyRequests)
			return
		}
		defer ring.readers.Add(-1)
		lines, last, changed := ring.since(after, num)
		if len(lines) == 0 && wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-changed:
				lines, last, _ = ring.since(after, num)
			case <-t.C:
			case <-req.Context().Done():
			}
			t.Stop()
		}
		if lines == nil {
			lines = []logapi.Line{}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(logapi.Response{Router: r.cfg.RouterID, Epoch: r.epoch, Last: last, Lines: lines})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mux.ServeHTTP(&deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: r.cfg.LogsWriteTimeout,
			stalled: r.metrics.logsStalled.Inc}, req)
	})
}

// deadlineWriteChunk is the most a deadlineWriter writes under one deadline.
const deadlineWriteChunk = 16 << 10

// deadlineWriter gives every write to the client a deadline of its own (timeout from
// its start), in chunks of deadlineWriteChunk: a client that reads slower than a chunk
// per timeout, or not at all, gets an error, and the server closes its connection. The
// deadline of the last write also bounds the server's flush after the handler.
type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	stalled func()
	failed  bool
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		end := min(n+deadlineWriteChunk, len(p))
		if err := d.rc.SetWriteDeadline(time.Now().Add(d.timeout)); err != nil {
			return n, err
		}
		m, err := d.ResponseWriter.Write(p[n:end])
		n += m
		if err != nil {
			if !d.failed && errors.Is(err, os.ErrDeadlineExceeded) {
				d.stalled()
			}
			d.failed = true
			return n, err
		}
	}
	return n, nil
}

// Unwrap lets http.ResponseController reach the server's writer.
func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

func logsQuery(q map[string][]string) (after uint64, num int, wait time.Duration, err error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	num = 100
	if v := get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			return 0, 0, 0, errors.New("after: want a line's sequence number")
		}
	}
	if v := get("num"); v != "" {
		if num, err = strconv.Atoi(v); err != nil || num < 1 || num > maxLogsNum {
			return 0, 0, 0, errors.New("num: want a number of lines from 1 to " + strconv.Itoa(maxLogsNum))
		}
	}
	if v := get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 || wait > maxLogsWait {
			return 0, 0, 0, errors.New("wait: want a duration from 0s to " + maxLogsWait.String())
		}
	}
	return after, num, wait, nil
}

// logKeys are the apps' router log keys the router read from Nomad.
type logKeys struct {
	mu   sync.Mutex
	keys map[string]cachedKey
}

type cachedKey struct {
	key string // "" when the app has none
	at  time.Time
}

// checkLogKey says whether key is the app's router log key. Only apps that exist in
// Nomad have one; the key is read from the app's Variable logapi.KeyPath, again when it is
// older than logKeyTTL, or when it does not match and was read more than logKeyRetry ago
// (so that a new key works at once, and wrong keys cost Nomad at most one read a second
// per app).
func (r *Router) checkLogKey(ctx context.Context, app, key string) (bool, error) {
	if r.nomad == nil || !r.appInNomad(app) || len(key) < logapi.MinKeyLen {
		return false, nil
	}
	r.logKeys.mu.Lock()
	c, ok := r.logKeys.keys[app]
	r.logKeys.mu.Unlock()
	age := time.Since(c.at)
	if ok && age < logKeyTTL && (keyMatches(c.key, key) || age < logKeyRetry) {
		return keyMatches(c.key, key), nil
	}
	// Read raw: the client's Variables().Read takes a refusal (403, a router token
	// without the rights) for a missing Variable.
	var v nomadapi.Variable
	_, err := r.nomad.Raw().Query("/v1/var/"+logapi.KeyPath, &v, (&nomadapi.QueryOptions{Namespace: app}).WithContext(ctx))
	switch {
	case apierr.IsStatus(err, http.StatusNotFound):
		c = cachedKey{at: time.Now()}
	case err != nil:
		return false, err
	default:
		c = cachedKey{key: v.Items[logapi.KeyItem], at: time.Now()}
	}
	r.logKeys.mu.Lock()
	if r.logKeys.keys == nil {
		r.logKeys.keys = make(map[string]cachedKey)
	}
	r.logKeys.keys[app] = c
	r.logKeys.mu.Unlock()
	return keyMatches(c.key, key), nil
}

func keyMatches(want, got string) bool {
	return len(want) >= logapi.MinKeyLen && subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// keep drops the keys of apps for which exists says false.
func (k *logKeys) keep(exists func(app string) bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for app := range k.keys {
		if !exists(app) {
			delete(k.keys, app)
		}
	}
}
