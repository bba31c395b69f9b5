// Package logapi is the contract of the router's logs endpoint: where an app's router
// log key lives in Nomad, the endpoint's path and its answer. The router serves it
// (router/logserve.go) and `dyno logs` reads it (internal/cli/routerlogs.go).
package logapi

import "time"

// KeyPath is the Nomad Variable, in each app's namespace, whose item KeyItem is the app's
// router log key: whoever may read that Variable (the app's deploy token, an operator)
// may read the app's router lines, and nobody else. An app's dynos may not: their
// workload identity reads only nomad/jobs/<app>/*.
const (
	KeyPath = "dyno/router-logs"
	KeyItem = "key"
)

// MinKeyLen is the shortest key the router accepts, in characters.
const MinKeyLen = 32

// Path is where the logs endpoint serves an app's router lines: Path + app, with
// "Authorization: Bearer <key>" and the query parameters after, epoch, num and wait.
const Path = "/v1/router-logs/"

// Line is one router line of an app: its sequence number in the router's ring for the
// app (from 1), when the router logged it, and the line in Heroku's format.
type Line struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Line string    `json:"line"`
}

// Response is the logs endpoint's answer. Epoch names this run of the router: a reader
// that sends another one (the router restarted) is answered as if it sent no after. Last
// is the sequence number to send as after next time.
type Response struct {
	Router string `json:"router"`
	Epoch  string `json:"epoch"`
	Last   uint64 `json:"last"`
	Lines  []Line `json:"lines"`
}
