// Package apierr tells what Nomad's and Consul's HTTP APIs answered when a call failed.
// Their Go clients return typed errors carrying the HTTP status code; matching the code
// is exact, where matching "404" in an error's text also matches an app, a port or a
// body that happens to contain those digits.
package apierr

import (
	"errors"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"
)

// IsStatus says whether err is, or wraps, an answer of Nomad's or Consul's HTTP API
// with the status code (e.g. http.StatusNotFound). An error that never reached the
// API, such as a refused connection, has no status and gives false.
func IsStatus(err error, code int) bool {
	c, ok := Status(err)
	return ok && c == code
}

// Status returns the HTTP status code that Nomad's or Consul's API answered in err,
// and false when err carries none.
func Status(err error) (int, bool) {
	var nomad nomadapi.UnexpectedResponseError
	if errors.As(err, &nomad) && nomad.HasStatusCode() {
		return nomad.StatusCode(), true
	}
	var consul consulapi.StatusError
	if errors.As(err, &consul) {
		return consul.Code, true
	}
	return 0, false
}
