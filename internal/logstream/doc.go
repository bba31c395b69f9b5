// Package logstream reads an app's log lines where they are kept: its dynos' output from
// Nomad's allocation logs API and its router lines from the routers' logs endpoints.
// `dyno logs` prints them; the log drain shipper (internal/drain) sends them on.
package logstream
