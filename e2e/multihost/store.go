package multihost

import (
	"context"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // nginx's {SSHA} password scheme, for a test store
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
)

// nginxUser is the user Debian's nginx runs its workers as.
const nginxUser = "www-data"

// StoreURL is the slug store's base address.
func (g *Grid) StoreURL() string { return "https://" + g.Store.Addr + ":" + storePort + "/slugs/" }

// StorePassword is the password of a user of the slug store (storeReader, storeDeployer).
func (g *Grid) StorePassword(name string) string {
	b, err := os.ReadFile(filepath.Join(g.Dir, storePasswords, name))
	if err != nil {
		g.t.Fatal(err)
	}
	return string(b)
}

// startStore runs the slug store on the store host: nginx with
// examples/cluster/slug-store/nginx.conf, included from a main file that stands for
// Debian's /etc/nginx/nginx.conf.
func (g *Grid) startStore(ctx context.Context) error {
	h := g.Store
	u, err := user.Lookup(nginxUser)
	if err != nil {
		return fmt.Errorf("slug store: %w (Debian's nginx-core makes this user)", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	root := filepath.Join(h.Dir, "www")
	for _, d := range []string{root, filepath.Join(root, "slugs"), filepath.Join(root, ".incoming")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := os.Chown(d, uid, gid); err != nil {
			return err
		}
	}
	if err := os.Chmod(h.Dir, 0o711); err != nil {
		return err
	}
	pwDir := filepath.Join(g.Dir, storePasswords)
	if err := os.MkdirAll(pwDir, 0o700); err != nil {
		return err
	}
	readers, uploaders := "", ""
	for _, name := range []string{storeReader, storeDeployer} {
		pw := make([]byte, 16)
		if _, err := rand.Read(pw); err != nil {
			return err
		}
		secret := hex.EncodeToString(pw)
		if err := os.WriteFile(filepath.Join(pwDir, name), []byte(secret), 0o600); err != nil {
			return err
		}
		line := name + ":" + ssha(secret) + "\n"
		readers += line
		if name == storeDeployer {
			uploaders += line
		}
	}
	htpasswd, upload := filepath.Join(h.Dir, "htpasswd"), filepath.Join(h.Dir, "htpasswd-upload")
	for path, body := range map[string]string{htpasswd: readers, upload: uploaders} {
		if err := os.WriteFile(path, []byte(body), 0o640); err != nil {
			return err
		}
		if err := os.Chown(path, 0, gid); err != nil {
			return err
		}
	}
	site := filepath.Join(h.Dir, "dynogrid-slugs.conf")
	if err := g.render("slug-store/nginx.conf", site, map[string]string{
		"SLUG_STORE_LISTEN":          h.Addr + ":" + storePort,
		"TLS_DIR":                    filepath.Join(h.Dir, "tls"),
		"SLUG_STORE_DIR":             root,
		"SLUG_STORE_HTPASSWD":        htpasswd,
		"SLUG_STORE_UPLOAD_HTPASSWD": upload,
	}); err != nil {
		return err
	}
	main := filepath.Join(h.Dir, "nginx.conf")
	if err := writeFile(main, fmt.Sprintf(`# The test's stand-in for Debian's /etc/nginx/nginx.conf.
user %[1]s;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/nginx-error.log;
events {
    worker_connections 256;
}
http {
    access_log %[2]s/nginx-access.log;
    include %[3]s;
}
`, nginxUser, h.Dir, site)); err != nil {
		return err
	}
	if _, err := g.start(h, "nginx", "nginx", "-c", main, "-g", "daemon off;"); err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: g.ca.tlsConfig()}}
	return g.wait(ctx, "slug store", func(ctx context.Context) error {
		resp, err := client.Get(g.StoreURL() + "0000000000000000000000000000000000000000000000000000000000000000.tar.gz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			return fmt.Errorf("an anonymous GET answered %s, want 401", resp.Status)
		}
		return nil
	})
}

// ssha is password hashed in nginx's {SSHA} scheme (salted SHA-1, RFC 2307).
func ssha(password string) string {
	salt := make([]byte, 8)
	_, _ = rand.Read(salt)
	h := sha1.New() //nolint:gosec // see the import
	h.Write([]byte(password))
	h.Write(salt)
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h.Sum(nil), salt...))
}
