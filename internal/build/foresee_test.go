package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynogrid/dynogrid/internal/appspec"
)

// TestForeseeGivesTheBuiltInDefaults plans a build without running it: a source with
// only a package.json gets the Node.js buildpack's web; a Procfile's web is kept; the
// spec's buildpacks run in order; and an app whose only process types would come from a
// buildpack that is not built in is refused, naming it.
func TestForeseeGivesTheBuiltInDefaults(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := &appspec.Spec{Name: "nodeapp", Dir: dir}
	f, err := Foresee(spec)
	if err != nil || strings.Join(f.Buildpacks, ",") != "nodejs" || strings.Join(f.Added, ",") != "web: npm start" {
		t.Fatalf("Foresee = %+v, %v; want nodejs and its web", f, err)
	}
	if p := spec.Process("web"); p == nil || p.Count != 1 || p.Command != "npm start" {
		t.Errorf("the planned web process: %+v", p)
	}

	spec = &appspec.Spec{Name: "rubyapp", Dir: dir, Processes: []appspec.Process{{Name: "web", Command: "thin start"}},
		Buildpacks: []appspec.Buildpack{{Dir: "/src/probe"}, {BuiltIn: "ruby"}}}
	f, err = Foresee(spec)
	if err != nil || strings.Join(f.Buildpacks, ",") != "/src/probe,ruby" || len(f.Added) != 0 || spec.Process("web").Command != "thin start" {
		t.Errorf("Foresee with the spec's web = %+v, %v, %+v", f, err, spec.Processes)
	}

	spec = &appspec.Spec{Name: "custom", Dir: t.TempDir(), Buildpacks: []appspec.Buildpack{{URL: "https://example.com/bp.tar.gz"}}}
	if _, err := Foresee(spec); err == nil || !strings.Contains(err.Error(), "https://example.com/bp.tar.gz") || !strings.Contains(err.Error(), "add a Procfile") {
		t.Errorf("Foresee of an app whose process types only a third-party buildpack gives = %v", err)
	}
}
