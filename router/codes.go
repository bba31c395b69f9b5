package router

import (
	"net/http"
	"strings"
)

// Code is a router error in Heroku's vocabulary: what the client gets and what the log
// line says.
type Code struct {
	Name   string // "H12"
	Desc   string // "Request timeout"
	Status int    // HTTP status sent to the client
}

// The codes the router answers and logs.
var (
	H10 = &Code{"H10", "App crashed", http.StatusServiceUnavailable}
	H11 = &Code{"H11", "Backlog too deep", http.StatusServiceUnavailable}
	H12 = &Code{"H12", "Request timeout", http.StatusServiceUnavailable}
	H13 = &Code{"H13", "Connection closed without response", http.StatusServiceUnavailable}
	H14 = &Code{"H14", "No web dynos running", http.StatusServiceUnavailable}
	H17 = &Code{"H17", "Poorly formatted HTTP response", http.StatusBadGateway}
	H18 = &Code{"H18", "Server Request Interrupted", http.StatusServiceUnavailable}
	H27 = &Code{"H27", "Client Request Interrupted", 499}
	H80 = &Code{"H80", "Maintenance mode", http.StatusServiceUnavailable}

	// Not Heroku codes, but coded too so that every failure has a name in the log.
	codeNoApp         = &Code{"", "No such app", http.StatusNotFound}
	codeBodyTooBig    = &Code{"", "Request body too large", http.StatusRequestEntityTooLarge}
	codeBadRequest    = &Code{"", "Bad request", http.StatusBadRequest}
	codeClientTimeout = &Code{"", "Client sent its body too slowly", http.StatusRequestTimeout}
	codeChallenge     = &Code{"", "ACME challenge answered", http.StatusOK}
	codeNoChallenge   = &Code{"", "No such ACME challenge", http.StatusNotFound}
	codeToHTTPS       = &Code{"", "Redirect to HTTPS", http.StatusMovedPermanently} // 308 for methods other than GET and HEAD
)

// Codes lists every Heroku code the router uses, for docs and metrics.
var Codes = []*Code{H10, H11, H12, H13, H14, H17, H18, H27, H80}

// body is the page sent with a coded failure.
func (c *Code) body() string {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html><html><head><title>Application Error</title></head><body><h1>")
	if c.Name != "" {
		b.WriteString(c.Name)
		b.WriteString(": ")
	}
	b.WriteString(c.Desc)
	b.WriteString("</h1></body></html>\n")
	return b.String()
}
