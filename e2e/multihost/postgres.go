package multihost

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/dynogrid/dynogrid/plugins/testserver"
)

// AddonConfig is the add-on settings file of the grid (JSON by add-on name), for the
// CLI's $DYNO_ADDON_CONFIG: the postgres add-on's server.
func (g *Grid) AddonConfig() string { return filepath.Join(g.Dir, "addons.json") }

// gateway is the bridge's address, in the root namespace: every host reaches it.
func (g *Grid) gateway() string { return fmt.Sprintf("10.213.%d.1", g.Net) }

// startPostgres runs the postgres add-on's server on the bridge's address, open to the
// grid's subnet with a password, as an operator's database host would be, and writes
// the add-on settings.
func (g *Grid) startPostgres() error {
	pw := make([]byte, 16)
	if _, err := rand.Read(pw); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	pg, err := testserver.StartPostgres(ctx, testserver.PostgresOptions{
		Dir: filepath.Join(g.Dir, "postgres"), Password: hex.EncodeToString(pw),
		ExtraListen: []string{g.gateway()}, AllowNetworks: []string{fmt.Sprintf("10.213.%d.0/24", g.Net)},
	})
	if err != nil {
		return fmt.Errorf("failed to start PostgreSQL for the postgres add-on: %w", err)
	}
	g.t.Cleanup(func() { _ = pg.Stop() })
	g.postgres = fmt.Sprintf("%s:%d", g.gateway(), pg.Port)
	// The CLI provisions from the laptop host: the admin URL names the bridge's address.
	admin, err := url.Parse(pg.AdminURL(""))
	if err != nil {
		return err
	}
	admin.Host = g.postgres
	settings := map[string]map[string]string{"postgres": {"admin_url": admin.String(), "public_host": g.gateway()}}
	b, err := json.Marshal(settings)
	if err != nil {
		return err
	}
	return os.WriteFile(g.AddonConfig(), b, 0o600)
}
