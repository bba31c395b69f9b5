package drain

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/apierr"
	"github.com/dynogrid/dynogrid/internal/tenancy"
)

// The Nomad Variables of drains, in each app's namespace. Path holds the app's drains,
// an item per drain: its token, and its URL. StatusPath is written by the shipper: an
// item per drain, its token and its Status in JSON. Whoever may read the app's
// variables (its deploy token, an operator) reads both; an app's dynos may not (their
// workload identity reads only nomad/jobs/<app>/*), nor may any other app.
const (
	Path       = "dyno/drains"
	StatusPath = "dyno/drains-status"
)

// Drain is one drain of an app: the token that names it (d.<uuid>, written into each
// line it is sent, as Heroku's drain tokens are) and its URL.
type Drain struct {
	Token string `json:"token"`
	URL   string `json:"url"`
}

// Status is what the shipper last said of a drain: the lines it sent, those it dropped
// (the drain was down and the buffer full), those waiting, and the last error.
type Status struct {
	Sent     uint64    `json:"sent"`
	Dropped  uint64    `json:"dropped"`
	Buffered int       `json:"buffered"`
	Error    string    `json:"error,omitempty"`
	Updated  time.Time `json:"updated"`
}

// List returns the app's drains, sorted by URL.
func List(ctx context.Context, c *nomadapi.Client, app string) ([]Drain, error) {
	v, err := read(ctx, c, app, Path)
	if err != nil || v == nil {
		return nil, err
	}
	return fromItems(v.Items), nil
}

func fromItems(items nomadapi.VariableItems) []Drain {
	var out []Drain
	for token, u := range items {
		out = append(out, Drain{Token: token, URL: u})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].URL < out[j].URL })
	return out
}

// Add adds a drain to the app and returns it; the URL is checked first, and an app has
// at most MaxDrains.
func Add(ctx context.Context, c *nomadapi.Client, app, raw string) (Drain, error) {
	if _, err := ParseURL(raw); err != nil {
		return Drain{}, err
	}
	token, err := newToken()
	if err != nil {
		return Drain{}, err
	}
	d := Drain{Token: token, URL: raw}
	err = update(ctx, c, app, func(items nomadapi.VariableItems) error {
		for _, u := range items {
			if u == raw {
				return fmt.Errorf("%s already drains to %s", app, raw)
			}
		}
		if len(items) >= MaxDrains {
			return fmt.Errorf("%s has %d drains: at most %d; remove one first", app, len(items), MaxDrains)
		}
		items[token] = raw
		return nil
	})
	return d, err
}

// Remove removes the app's drain of that URL (or token) and returns it.
func Remove(ctx context.Context, c *nomadapi.Client, app, urlOrToken string) (Drain, error) {
	var gone Drain
	err := update(ctx, c, app, func(items nomadapi.VariableItems) error {
		for token, u := range items {
			if u == urlOrToken || token == urlOrToken {
				gone = Drain{Token: token, URL: u}
				delete(items, token)
				return nil
			}
		}
		return fmt.Errorf("%s has no drain %s (see `dyno drains`)", app, urlOrToken)
	})
	return gone, err
}

// update changes the app's drains with change, checked against concurrent changes.
func update(ctx context.Context, c *nomadapi.Client, app string, change func(nomadapi.VariableItems) error) error {
	ns := tenancy.Namespace(app)
	for attempt := 0; attempt < 3; attempt++ {
		v, err := read(ctx, c, app, Path)
		if err != nil {
			return err
		}
		if v == nil {
			v = &nomadapi.Variable{Namespace: ns, Path: Path}
		}
		if v.Items == nil {
			v.Items = nomadapi.VariableItems{}
		}
		if err := change(v.Items); err != nil {
			return err
		}
		w := (&nomadapi.WriteOptions{Namespace: ns}).WithContext(ctx)
		if len(v.Items) == 0 {
			_, err = c.Variables().CheckedDelete(Path, v.ModifyIndex, w)
		} else {
			_, _, err = c.Variables().CheckedUpdate(v, w)
		}
		var conflict nomadapi.ErrCASConflict
		if errors.As(err, &conflict) {
			continue // changed meanwhile: read it again
		}
		if err != nil {
			return fmt.Errorf("failed to save the drains of %s: %w", app, err)
		}
		return nil
	}
	return fmt.Errorf("failed to save the drains of %s: they kept changing", app)
}

// ReadStatus returns the shipper's last word on each of the app's drains, by token.
func ReadStatus(ctx context.Context, c *nomadapi.Client, app string) (map[string]Status, error) {
	v, err := read(ctx, c, app, StatusPath)
	if err != nil || v == nil {
		return nil, err
	}
	out := map[string]Status{}
	for token, raw := range v.Items {
		var s Status
		if json.Unmarshal([]byte(raw), &s) == nil {
			out[token] = s
		}
	}
	return out, nil
}

// WriteStatus replaces the app's drain status with st.
func WriteStatus(ctx context.Context, c *nomadapi.Client, app string, st map[string]Status) error {
	ns := tenancy.Namespace(app)
	items := nomadapi.VariableItems{}
	for token, s := range st {
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		items[token] = string(b)
	}
	w := (&nomadapi.WriteOptions{Namespace: ns}).WithContext(ctx)
	if len(items) == 0 {
		_, err := c.Variables().Delete(StatusPath, w)
		return err
	}
	_, _, err := c.Variables().Update(&nomadapi.Variable{Namespace: ns, Path: StatusPath, Items: items}, w)
	return err
}

// read returns the app's variable at path, or nil when there is none. It asks Nomad's
// HTTP API itself: the API client's Variables().Read answers "not found" for a refusal
// too, and a token that may not read the app's variables must be told so.
func read(ctx context.Context, c *nomadapi.Client, app, path string) (*nomadapi.Variable, error) {
	var v nomadapi.Variable
	_, err := c.Raw().Query("/v1/var/"+path, &v, (&nomadapi.QueryOptions{Namespace: tenancy.Namespace(app)}).WithContext(ctx))
	if apierr.IsStatus(err, http.StatusNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read %s of %s: %w", path, app, err)
	}
	return &v, nil
}

// tokenRE matches the tokens newToken makes.
var tokenRE = regexp.MustCompile(`^d\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// newToken makes a drain token, d.<uuid>.
func newToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return strings.Join([]string{"d." + h[:8], h[8:12], h[12:16], h[16:20], h[20:]}, "-"), nil
}
