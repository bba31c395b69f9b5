package build

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/dynogrid/dynogrid/buildpacks"
	"github.com/dynogrid/dynogrid/internal/appspec"
)

// Foreseen is what can be told of a build without running it.
type Foreseen struct {
	// Buildpacks are those that would build the app, in order: built-in names, and the
	// directories and URLs of the others.
	Buildpacks []string
	// Added are the default process types added to the spec, "name: command".
	Added []string
}

// Foresee gives spec the default process types that the built-in buildpacks that would
// build it give (as a build's bin/release would), where the spec has no process of
// that name, and says which buildpacks would run. It runs nothing: what a buildpack
// that is not built in gives is known only once it runs, so an app that would get its
// only process types from one is refused, saying so.
func Foresee(spec *appspec.Spec) (*Foreseen, error) {
	f := &Foreseen{}
	r := Release{DefaultProcessTypes: map[string]string{}}
	var others []string
	if len(spec.Buildpacks) == 0 {
		for _, name := range buildpacks.BuiltIn {
			if st, err := os.Stat(filepath.Join(spec.Dir, buildpacks.Detects[name])); err == nil && st.Mode().IsRegular() {
				f.Buildpacks = []string{name}
				maps.Copy(r.DefaultProcessTypes, buildpacks.DefaultProcessTypes[name])
				break
			}
		}
	}
	for _, bp := range spec.Buildpacks {
		f.Buildpacks = append(f.Buildpacks, bp.String())
		if bp.BuiltIn == "" {
			others = append(others, bp.String())
			continue
		}
		maps.Copy(r.DefaultProcessTypes, buildpacks.DefaultProcessTypes[bp.BuiltIn])
	}
	before := map[string]bool{}
	for _, p := range spec.Processes {
		before[p.Name] = true
	}
	if len(spec.Processes) == 0 && len(r.DefaultProcessTypes) == 0 && len(others) > 0 {
		return nil, fmt.Errorf("%s has no Procfile, and its process types come from the bin/release of %s, which runs only in a build: `dyno deploy` it, or add a Procfile", spec.Name, strings.Join(others, ", "))
	}
	if err := r.Apply(spec, spec.Dir, spec.Stack); err != nil {
		return nil, err
	}
	for _, p := range spec.Processes {
		if !before[p.Name] {
			f.Added = append(f.Added, p.Name+": "+p.Command)
		}
	}
	return f, nil
}
