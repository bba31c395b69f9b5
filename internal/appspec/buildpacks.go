package appspec

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/dynogrid/dynogrid/buildpacks"
)

// Limits of the spec's buildpacks list.
const (
	// MaxBuildpacks bounds the buildpacks one build runs.
	MaxBuildpacks = 8
	// MaxBuildpackRefBytes bounds one entry of the list.
	MaxBuildpackRefBytes = 1024
)

// Buildpack is one entry of the spec's buildpacks list: exactly one of its fields is set.
type Buildpack struct {
	// BuiltIn names a built-in buildpack.
	BuiltIn string `json:"builtin,omitempty"`
	// Dir is the absolute path of a buildpack's directory on the deploying machine.
	Dir string `json:"dir,omitempty"`
	// URL is where a buildpack's .tar.gz archive is downloaded from (http or https).
	URL string `json:"url,omitempty"`
}

// String is the entry as the spec wrote it, resolved.
func (b Buildpack) String() string {
	switch {
	case b.Dir != "":
		return b.Dir
	case b.URL != "":
		return b.URL
	}
	return b.BuiltIn
}

// Stack is what a slug built with buildpacks needs of the stack its dynos run on: the
// stack it was built on, and the versions of the runtimes its code was built against
// ("" for a runtime it does not use). A deploy sets it from the build; it is not read
// from the spec.
type Stack struct {
	Name string `json:"name"`
	// Ruby is the major.minor version of the stack's ruby, when a Ruby buildpack ran
	// (its native extensions are built for that ABI).
	Ruby string `json:"ruby,omitempty"`
	// Node is the major version of the stack's node, when a Node.js buildpack ran.
	Node string `json:"node,omitempty"`
}

// resolveBuildpacks reads the spec's buildpacks list: built-in names, directories
// (relative to base) holding bin/detect, bin/compile and bin/release, or http(s) URLs of
// .tar.gz archives of such a directory.
func resolveBuildpacks(expr hcl.Expression, base string, diags *hcl.Diagnostics) []Buildpack {
	list := stringList{
		Name:        "buildpacks",
		Example:     `buildpacks is a list, such as ["ruby"], ["nodejs", "./buildpacks/assets"] or ["https://example.com/buildpack.tar.gz"].`,
		Max:         MaxBuildpacks,
		TooMany:     "Combine buildpacks, or do the extra steps in one of them.",
		ElemSummary: "Invalid buildpack",
		NotString: func(i int) string {
			return fmt.Sprintf("Buildpack %d is not a string; write a built-in name (%s), a directory or an archive URL in quotes.", i, strings.Join(buildpacks.BuiltIn, ", "))
		},
	}
	var out []Buildpack
	for _, e := range list.read(expr, diags) {
		bp, problem := parseBuildpack(e.Value, base)
		if problem != "" {
			*diags = append(*diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid buildpack",
				Detail: fmt.Sprintf("Buildpack %d: %s", e.Index, problem), Subject: e.Range.Ptr()})
			continue
		}
		out = append(out, bp)
	}
	return out
}

// parseBuildpack resolves one entry of the list, or says what is wrong with it.
func parseBuildpack(ref, base string) (Buildpack, string) {
	switch {
	case ref == "":
		return Buildpack{}, "is empty."
	case len(ref) > MaxBuildpackRefBytes:
		return Buildpack{}, fmt.Sprintf("is longer than %d bytes.", MaxBuildpackRefBytes)
	case strings.ContainsAny(ref, "\x00\n\r"):
		return Buildpack{}, "holds a control character."
	case slices.Contains(buildpacks.BuiltIn, ref):
		return Buildpack{BuiltIn: ref}, ""
	case strings.Contains(ref, "://"):
		u, err := url.Parse(ref)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return Buildpack{}, fmt.Sprintf("%s is not an http or https URL of a .tar.gz archive (without credentials).", short(ref))
		}
		if !strings.HasSuffix(u.Path, ".tar.gz") && !strings.HasSuffix(u.Path, ".tgz") {
			return Buildpack{}, fmt.Sprintf("%s does not name a .tar.gz or .tgz archive.", short(ref))
		}
		return Buildpack{URL: ref}, ""
	case strings.HasPrefix(ref, "./") || strings.HasPrefix(ref, "../") || filepath.IsAbs(ref):
		dir := ref
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(base, dir)
		}
		dir = filepath.Clean(dir)
		for _, script := range []string{"detect", "compile", "release"} {
			st, err := os.Stat(filepath.Join(dir, "bin", script))
			if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
				return Buildpack{}, fmt.Sprintf("%s has no executable bin/%s; a buildpack directory holds bin/detect, bin/compile and bin/release.", short(ref), script)
			}
		}
		return Buildpack{Dir: dir}, ""
	}
	return Buildpack{}, fmt.Sprintf("%s is neither a built-in buildpack (%s), a directory (starting with ./, ../ or /) nor an http(s) URL.", short(ref), strings.Join(buildpacks.BuiltIn, ", "))
}

// BuildFiles are the files whose presence in an app's source makes a deploy build it.
var BuildFiles = []string{"Gemfile", "package.json"}

// HasBuildFile says whether the source directory dir holds one of BuildFiles.
func HasBuildFile(dir string) bool {
	for _, f := range BuildFiles {
		if st, err := os.Stat(filepath.Join(dir, f)); err == nil && st.Mode().IsRegular() {
			return true
		}
	}
	return false
}

// DefaultProcess is a process type a buildpack's bin/release gives, for an app whose
// Procfile or spec has none of that name: sized and counted as a Procfile line is.
func DefaultProcess(name, command string) (Process, error) {
	command = strings.TrimSpace(command)
	switch {
	case !procNameRe.MatchString(name):
		return Process{}, fmt.Errorf("%s is not a process type name", short(name))
	case command == "":
		return Process{}, fmt.Errorf("it has no command")
	}
	if err := checkCommand("Process type "+short(name), command); err != nil {
		return Process{}, err
	}
	p := Process{Name: name, Command: command, Count: 1, Max: MaxCount, MemoryMB: DefaultMemoryMB, Size: SizeDedicated}
	if name == "web" {
		p.HealthCheck = "/"
	} else {
		p.Count = 0
	}
	return p, nil
}

// AddProcess adds p to the spec's process types, kept sorted, within MaxProcessTypes.
func (s *Spec) AddProcess(p Process) error {
	if len(s.Processes) >= MaxProcessTypes {
		return fmt.Errorf("the app has %d process types already, the limit", MaxProcessTypes)
	}
	s.Processes = append(s.Processes, p)
	sortProcesses(s.Processes)
	return nil
}
