// Package buildpacks holds Dynogrid's built-in buildpacks, which follow Heroku's classic
// buildpack contract (bin/detect, bin/compile, bin/release), and the build dyno's program
// that runs them (builder/build).
package buildpacks

import "embed"

// FS holds builder/ and one directory per built-in buildpack.
//
//go:embed builder ruby nodejs procfile
var FS embed.FS

// BuiltIn are the built-in buildpacks, in the order an app is detected against them
// when its spec names none.
var BuiltIn = []string{"ruby", "nodejs", "procfile"}

// Detects is the file whose presence in the app's source each built-in buildpack's
// bin/detect looks for.
var Detects = map[string]string{"ruby": "Gemfile", "nodejs": "package.json", "procfile": "Procfile"}

// DefaultProcessTypes are the default process types each built-in buildpack's bin/release
// gives, for `dyno plan` to show without running a build.
var DefaultProcessTypes = map[string]map[string]string{
	"ruby":   {"web": "bundle exec rackup --port $PORT --host 0.0.0.0"},
	"nodejs": {"web": "npm start"},
}
