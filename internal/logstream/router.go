package logstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dynogrid/dynogrid/router/logapi"
)

// Poll is how long one request for new router lines waits at the router.
const Poll = 25 * time.Second

// RouterReader reads an app's router lines from one router's logs endpoint.
type RouterReader struct {
	// Base is the router's logs endpoint, http(s)://host:port.
	Base     string
	app, key string
	client   *http.Client
	after    uint64
	epoch    string
}

// NewRouterReader reads the router lines of app from the router at base with the app's
// router log key.
func NewRouterReader(base, app, key string) *RouterReader {
	return &RouterReader{Base: base, app: app, key: key, client: &http.Client{Timeout: Poll + 15*time.Second}}
}

// ErrRefused is a refusal of the key (401, 403): trying again will not help.
var ErrRefused = errors.New("the router refused the app's router log key")

// Read returns the next router lines: the last num at first, then those after the last
// read, waiting up to wait for one.
func (rr *RouterReader) Read(ctx context.Context, num int, wait time.Duration) ([]logapi.Line, error) {
	q := url.Values{"num": {strconv.Itoa(min(num, 1000))}}
	if rr.epoch != "" {
		q.Set("after", strconv.FormatUint(rr.after, 10))
		q.Set("epoch", rr.epoch)
		q.Set("num", "1000")
	}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rr.Base+logapi.Path+rr.app+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+rr.key)
	resp, err := rr.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to read router lines from %s: %w", rr.Base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("failed to read router lines from %s: %w", rr.Base, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%w at %s: %s", ErrRefused, rr.Base, strings.TrimSpace(string(body)))
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("failed to read router lines from %s: %s: %s", rr.Base, resp.Status, strings.TrimSpace(string(body)))
	}
	var r logapi.Response
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("failed to read router lines from %s: %w", rr.Base, err)
	}
	rr.after, rr.epoch = r.Last, r.Epoch
	return r.Lines, nil
}

// Started says whether rr has read once: its next Read returns only newer lines.
func (rr *RouterReader) Started() bool { return rr.epoch != "" }
