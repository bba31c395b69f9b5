package build

import (
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/internal/deploy"
)

// Release is what a buildpack's bin/release says, in YAML: default process types, and
// config vars the app gets unless it sets them itself.
type Release struct {
	DefaultProcessTypes map[string]string `yaml:"default_process_types"`
	ConfigVars          map[string]string `yaml:"config_vars"`
}

// merge adds one buildpack's bin/release output b to r, over what r has.
func (r *Release) merge(b []byte) error {
	var next Release
	if err := yaml.Unmarshal(b, &next); err != nil {
		return fmt.Errorf("bin/release's output is not the YAML of the buildpack contract: %w", err)
	}
	if len(r.DefaultProcessTypes)+len(next.DefaultProcessTypes) > appspec.MaxProcessTypes || len(r.ConfigVars)+len(next.ConfigVars) > 100 {
		return fmt.Errorf("bin/release gives more than %d process types or 100 config vars", appspec.MaxProcessTypes)
	}
	for k, v := range next.DefaultProcessTypes {
		if r.DefaultProcessTypes == nil {
			r.DefaultProcessTypes = map[string]string{}
		}
		r.DefaultProcessTypes[k] = v
	}
	for k, v := range next.ConfigVars {
		if r.ConfigVars == nil {
			r.ConfigVars = map[string]string{}
		}
		r.ConfigVars[k] = v
	}
	return nil
}

// Apply makes spec the built app's: its source is dir, it needs stack, the release's
// default process types are added where the spec has no process of that name, and
// its config vars are set where the spec sets none.
func (r Release) Apply(spec *appspec.Spec, dir string, stack *appspec.Stack) error {
	spec.Dir = dir
	spec.Stack = stack
	for _, name := range deploy.SortedKeys(r.DefaultProcessTypes) {
		if spec.Process(name) != nil || (name == "release" && spec.Release != nil) {
			continue
		}
		p, err := appspec.DefaultProcess(name, r.DefaultProcessTypes[name])
		if err != nil {
			return fmt.Errorf("bin/release: default process type %q: %w", name, err)
		}
		if err := spec.AddProcess(p); err != nil {
			return fmt.Errorf("bin/release: default process type %q: %w", name, err)
		}
	}
	if len(spec.Processes) == 0 {
		return errors.New("the app has no process types: it has no Procfile and its buildpacks' bin/release gave none; add a Procfile with a line such as `web: <command>`")
	}
	for k, v := range r.ConfigVars {
		if _, ok := spec.Config[k]; ok {
			continue
		}
		if spec.Config == nil {
			spec.Config = map[string]string{}
		}
		spec.Config[k] = v
	}
	return nil
}
