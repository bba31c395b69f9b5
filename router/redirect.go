package router

import (
	"net"
	"net/http"
	"strings"
)

// redirectToHTTPS answers a plain HTTP request to an app that asked for HTTPS only:
// 301 (GET and HEAD) or 308 (other methods, which keep their body) to the same URL
// over HTTPS. A Host without a port (the client used port 80, or a load balancer's)
// is sent to the default HTTPS port; a Host with one, to the router's HTTPS port.
func (r *Router) redirectToHTTPS(w http.ResponseWriter, req *http.Request, rec *record) {
	host := req.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
		if p := r.tlsPort(); p != "" && p != "443" {
			host = net.JoinHostPort(h, p)
		}
	}
	uri := req.RequestURI
	if !strings.HasPrefix(uri, "/") {
		uri = "/" // an absolute-form or asterisk target: the app's root
	}
	status := http.StatusPermanentRedirect
	if req.Method == http.MethodGet || req.Method == http.MethodHead {
		status = http.StatusMovedPermanently
	}
	rec.code, rec.status = codeToHTTPS, status
	h := w.Header()
	h.Set("Location", "https://"+host+uri)
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
}

// portFor is the router port a request came in on, for X-Forwarded-Port.
func (r *Router) portFor(req *http.Request) string {
	if req.TLS != nil {
		return r.tlsPort()
	}
	return r.port()
}

// tlsPort is the port of the HTTPS listener, once it listens.
func (r *Router) tlsPort() string {
	if p := r.tlsLport.Load(); p != nil {
		return *p
	}
	return ""
}
