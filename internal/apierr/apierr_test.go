package apierr

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"
)

// answering returns the address of an HTTP server that answers every request with code
// and a body that mentions other status codes, to show they are not what is matched.
func answering(t *testing.T, code int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "job shop404 refused with 403 and 500", code)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func nomadError(t *testing.T, code int) error {
	t.Helper()
	c, err := nomadapi.NewClient(&nomadapi.Config{Address: answering(t, code)})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Jobs().Info("shop404", nil)
	if err == nil {
		t.Fatalf("nomad's client accepted an answer %d", code)
	}
	return err
}

func consulError(t *testing.T, code int) error {
	t.Helper()
	c, err := consulapi.NewClient(&consulapi.Config{Address: answering(t, code)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.KV().Put(&consulapi.KVPair{Key: "k", Value: []byte("v")}, nil)
	if err == nil {
		t.Fatalf("consul's client accepted an answer %d", code)
	}
	return err
}

func TestIsStatus_Nomad(t *testing.T) {
	t.Parallel()
	for _, code := range []int{http.StatusNotFound, http.StatusForbidden, http.StatusInternalServerError} {
		err := nomadError(t, code)
		if !IsStatus(err, code) {
			t.Errorf("IsStatus(%v, %d) = false, want true", err, code)
		}
		wrapped := fmt.Errorf("failed to read app shop404: %w", err)
		if !IsStatus(wrapped, code) {
			t.Errorf("IsStatus of the wrapped %v, %d = false, want true", wrapped, code)
		}
		if got, ok := Status(wrapped); !ok || got != code {
			t.Errorf("Status(%v) = %d, %v, want %d, true", wrapped, got, ok, code)
		}
	}
	if err := nomadError(t, http.StatusForbidden); IsStatus(err, http.StatusNotFound) || IsStatus(err, http.StatusInternalServerError) {
		t.Errorf("a 403 whose body mentions 404 and 500 matched another code: %v", err)
	}
}

func TestIsStatus_Consul(t *testing.T) {
	t.Parallel()
	for _, code := range []int{http.StatusNotFound, http.StatusForbidden} {
		err := fmt.Errorf("failed to write the ledger: %w", consulError(t, code))
		if !IsStatus(err, code) {
			t.Errorf("IsStatus(%v, %d) = false, want true", err, code)
		}
	}
	if err := consulError(t, http.StatusForbidden); IsStatus(err, http.StatusNotFound) {
		t.Errorf("a 403 whose body mentions 404 matched 404: %v", err)
	}
}

func TestIsStatus_NoAnswer(t *testing.T) {
	t.Parallel()
	// A server that is gone: the error names the address and the job, never a status.
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	c, err := nomadapi.NewClient(&nomadapi.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Jobs().Info("shop404", nil)
	if err == nil {
		t.Fatal("a closed server answered")
	}
	if IsStatus(err, http.StatusNotFound) {
		t.Errorf("a refused connection matched 404: %v", err)
	}
	if code, ok := Status(err); ok {
		t.Errorf("Status(%v) = %d, true; want no status", err, code)
	}
	for _, err := range []error{nil, errors.New("Unexpected response code: 404 (job not found)")} {
		if IsStatus(err, http.StatusNotFound) {
			t.Errorf("IsStatus(%v, 404) = true; only the clients' typed errors carry a status", err)
		}
	}
}
