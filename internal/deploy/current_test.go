package deploy

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"
)

// TestCurrent_NoApp tells an app Nomad does not know from a failure to ask: only a 404
// answer makes ErrNoApp, whatever the other errors' text says.
func TestCurrent_NoApp(t *testing.T) {
	t.Parallel()
	nomad, _ := fakeNomad(t, map[string]string{})
	d := &Deployer{Nomad: nomad}
	_, err := d.Current(context.Background(), "gone")
	if !errors.Is(err, ErrNoApp) || err.Error() != "no such app: gone" {
		t.Fatalf("Current of an app Nomad answers 404 for = %v, want ErrNoApp naming it", err)
	}

	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "rpc error: job shop404 not found in the 404 namespace", http.StatusInternalServerError)
	}))
	t.Cleanup(refusing.Close)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	for name, addr := range map[string]string{"an error whose text says 404": refusing.URL, "a refused connection": gone.URL} {
		c, err := nomadapi.NewClient(&nomadapi.Config{Address: addr})
		if err != nil {
			t.Fatal(err)
		}
		_, err = (&Deployer{Nomad: c}).Current(context.Background(), "shop404")
		if err == nil || errors.Is(err, ErrNoApp) {
			t.Errorf("%s: Current = %v, want a failure to read the app, not ErrNoApp", name, err)
		}
		if want := "failed to read app shop404: "; err != nil && !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: Current = %q, want it to start with %q", name, err, want)
		}
	}
}
