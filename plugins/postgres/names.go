package postgres

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
)

// ResourceName is the name of the database and of the role made for one request:
// d_<app>_<10 hex digits of a hash of app and request ID>, at most 63 characters (the
// PostgreSQL limit). It depends only on its inputs, so that a retry finds the same one.
func ResourceName(app, requestID string) string {
	a := strings.ReplaceAll(app, "-", "_")
	if len(a) > 40 {
		a = a[:40]
	}
	sum := sha256.Sum256([]byte(app + "\x00" + requestID))
	return "d_" + a + "_" + hex.EncodeToString(sum[:5])
}

// newPassword returns 256 random bits, URL-safe.
func newPassword() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("failed to make a password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// databaseURL is the DATABASE_URL an app gets.
func (c config) databaseURL(name, password string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(name, password),
		Host:     fmt.Sprintf("%s:%d", hostForURL(c.publicHost), c.publicPort),
		Path:     "/" + name,
		RawQuery: "sslmode=" + url.QueryEscape(c.sslmode),
	}
	return u.String()
}

func hostForURL(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// quoteLiteral quotes s as an SQL string literal (for statements that take no
// parameters, such as CREATE ROLE ... PASSWORD).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// comment marks a database as made by this add-on for an app and request.
func comment(app, requestID string) string {
	return fmt.Sprintf("dynogrid add-on postgres: app=%s request_id=%s", app, requestID)
}
