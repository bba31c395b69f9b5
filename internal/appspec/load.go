package appspec

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

var (
	appNameRe   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,28}[a-z0-9]$`)
	envKeyRe    = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	hostLabelRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	planRe      = regexp.MustCompile(fmt.Sprintf(`^[a-z0-9][a-z0-9-]{0,%d}$`, MaxPlanBytes-1))
	// reservedEnv are set by the platform on every dyno.
	reservedEnv = map[string]bool{"PORT": true, "DYNO": true}
)

type fileSchema struct {
	Apps []appBlock `hcl:"app,block"`
}

type appBlock struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	DefRange  hcl.Range      `hcl:",def_range"`
	Source    *string        `hcl:"source,optional"`
	Procfile  *string        `hcl:"procfile,optional"`
	Domains   hcl.Expression `hcl:"domains,optional"`
	// Buildpacks is the list of buildpacks that build the app (buildpacks.go).
	Buildpacks hcl.Expression `hcl:"buildpacks,optional"`
	Timeout    *string        `hcl:"timeout,optional"`
	Config     []configBlock  `hcl:"config,block"`
	Processes  []processBlock `hcl:"process,block"`
	Addons     []addonBlock   `hcl:"addon,block"`
	// Schedules: schedule.go.
	Schedules []scheduleBlock `hcl:"schedule,block"`

	SourceRange   hcl.Range `hcl:"source,attr_value_range"`
	ProcfileRange hcl.Range `hcl:"procfile,attr_value_range"`
	TimeoutRange  hcl.Range `hcl:"timeout,attr_value_range"`
}

type configBlock struct {
	DefRange hcl.Range      `hcl:",def_range"`
	Vars     hcl.Attributes `hcl:",remain"`
}

type processBlock struct {
	Name        string    `hcl:"name,label"`
	NameRange   hcl.Range `hcl:"name,label_range"`
	DefRange    hcl.Range `hcl:",def_range"`
	Command     *string   `hcl:"command,optional"`
	Count       *int      `hcl:"count,optional"`
	Min         *int      `hcl:"min,optional"`
	Max         *int      `hcl:"max,optional"`
	Memory      *int      `hcl:"memory,optional"`
	HealthCheck *string   `hcl:"health_check,optional"`
	Size        *string   `hcl:"size,optional"`

	Autoscale []autoscaleBlock `hcl:"autoscale,block"`

	CommandRange     hcl.Range `hcl:"command,attr_value_range"`
	CountRange       hcl.Range `hcl:"count,attr_value_range"`
	MinRange         hcl.Range `hcl:"min,attr_value_range"`
	MaxRange         hcl.Range `hcl:"max,attr_value_range"`
	MemoryRange      hcl.Range `hcl:"memory,attr_value_range"`
	HealthCheckRange hcl.Range `hcl:"health_check,attr_value_range"`
	SizeRange        hcl.Range `hcl:"size,attr_value_range"`
}

type addonBlock struct {
	Service   string    `hcl:"service,label"`
	NameRange hcl.Range `hcl:"service,label_range"`
	DefRange  hcl.Range `hcl:",def_range"`
	As        *string   `hcl:"as,optional"`
	Plan      *string   `hcl:"plan,optional"`
	AsRange   hcl.Range `hcl:"as,attr_value_range"`
	PlanRange hcl.Range `hcl:"plan,attr_value_range"`
}

// Load reads the app spec at path: an HCL file, or a directory that holds a dyno.hcl or
// only a Procfile. The diagnostics carry file:line:col.
func Load(path string) (*Spec, hcl.Diagnostics) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, errDiag("Cannot read app spec", fmt.Sprintf("%v; give the path of a spec file or of an app directory.", err))
	}
	if !st.IsDir() {
		src, err := readLimited(path, MaxSpecBytes)
		if err != nil {
			return nil, errDiag("Cannot read app spec", err.Error())
		}
		return Parse(path, src)
	}
	specPath := filepath.Join(path, SpecFile)
	if src, err := readLimited(specPath, MaxSpecBytes); err == nil {
		return Parse(specPath, src)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, errDiag("Cannot read app spec", err.Error())
	}
	return fromProcfileDir(path)
}

// fromProcfileDir makes a spec from a directory with only a Procfile: the app is named
// after the directory, with one web dyno and no dyno of the other process types. A
// directory with neither a spec nor a Procfile but with a file that a build needs
// (BuildFiles) is an app with no process types until its build gives them.
func fromProcfileDir(dir string) (*Spec, hcl.Diagnostics) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, errDiag("Cannot read app directory", err.Error())
	}
	procfile := filepath.Join(abs, "Procfile")
	src, err := readLimited(procfile, MaxProcfileBytes)
	buildOnly := errors.Is(err, os.ErrNotExist) && HasBuildFile(abs)
	if err != nil && !buildOnly {
		return nil, errDiag("No app spec", fmt.Sprintf("%s has neither a %s nor a Procfile; add one of them.", abs, SpecFile))
	}
	name := strings.ToLower(filepath.Base(abs))
	if ValidateAppName(name) != nil {
		return nil, errDiag("Cannot name the app", fmt.Sprintf("The directory name %s is not an app name; add a %s with `app \"name\" { procfile = \"Procfile\" }`, naming it with lowercase letters, digits and dashes.", short(name), SpecFile))
	}
	spec := &Spec{Name: name, Dir: abs, Timeout: DefaultTimeout}
	if buildOnly {
		// As on Heroku: the buildpacks' default process types (bin/release) are the
		// app's, once it is built.
		return spec, nil
	}
	entries, diags := ParseProcfile(procfile, src)
	if diags.HasErrors() {
		return nil, diags
	}
	for _, e := range entries {
		// As on Heroku: one web dyno; other process types wait for `dyno ps:scale`.
		p := Process{Name: e.Name, Command: e.Command, Max: MaxCount, MemoryMB: DefaultMemoryMB, Size: SizeDedicated}
		switch e.Name {
		case "web":
			p.Count, p.HealthCheck = 1, "/"
		case ReleaseProcess:
			p.Max = 0
			spec.Release = &p
			continue
		}
		spec.Processes = append(spec.Processes, p)
	}
	if len(spec.Processes) == 0 {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Subject: entries[0].Range.Ptr(),
			Summary: "No process types",
			Detail:  "The Procfile has only a release command, which runs once per release and has no dynos; add a line such as `web: thin start -p $PORT`."}}
	}
	sortProcesses(spec.Processes)
	return spec, nil
}

// Parse reads an HCL app spec from src; filename names it in diagnostics and anchors its
// relative paths.
func Parse(filename string, src []byte) (*Spec, hcl.Diagnostics) {
	if len(src) > MaxSpecBytes {
		return nil, specTooLarge(filename)
	}
	if diags := checkNesting(filename, src); diags.HasErrors() {
		return nil, diags
	}
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	var fs fileSchema
	if diags := gohcl.DecodeBody(file.Body, nil, &fs); diags.HasErrors() {
		return nil, diags
	}
	switch len(fs.Apps) {
	case 0:
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Missing app block",
			Detail:  `An app spec holds one block such as app "myapp" { process "web" { command = "..." } }.`,
			Subject: &hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos}}}
	case 1:
	default:
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "More than one app block",
			Detail:  fmt.Sprintf("A spec describes one app; this one also declares %s. Put each app in a file of its own.", short(fs.Apps[1].Name)),
			Subject: fs.Apps[1].DefRange.Ptr()}}
	}
	return resolve(filename, &fs.Apps[0])
}

func resolve(filename string, a *appBlock) (*Spec, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	add := func(rng hcl.Range, summary, detail string, args ...any) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary,
			Detail: fmt.Sprintf(detail, args...), Subject: rng.Ptr()})
	}
	base := filepath.Dir(filename)
	if abs, err := filepath.Abs(base); err == nil {
		base = abs
	}
	spec := &Spec{Name: a.Name, Dir: base, Timeout: DefaultTimeout}

	if err := ValidateAppName(a.Name); err != nil {
		add(a.NameRange, "Invalid app name", "%s.", err)
	}
	if a.Source != nil {
		dir := *a.Source
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(base, dir)
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			add(a.SourceRange, "Source directory not found", "%s is not a directory; give the app's code directory, relative to this file.", short(*a.Source))
		}
		spec.Dir = filepath.Clean(dir)
	}

	var procfileEntries []ProcfileEntry
	procfile := map[string]ProcfileEntry{}
	if a.Procfile != nil {
		path := *a.Procfile
		if !filepath.IsAbs(path) {
			path = filepath.Join(spec.Dir, path)
		}
		src, err := readLimited(path, MaxProcfileBytes)
		if err != nil {
			add(a.ProcfileRange, "Procfile not found", "Cannot read %s (%v); give its path relative to the source directory, or list commands in process blocks instead.", short(*a.Procfile), errors.Unwrap(err))
		} else {
			entries, pdiags := ParseProcfile(path, src)
			diags = append(diags, pdiags...)
			procfileEntries = entries
			for _, e := range entries {
				procfile[e.Name] = e
			}
		}
	}

	// The limit counts the process blocks and the Procfile's other entries together;
	// the diagnostic points at the first one over it.
	types := 0
	tooMany := func(rng hcl.Range) bool {
		types++
		if types == MaxProcessTypes+1 {
			total := len(a.Processes)
			for _, e := range procfileEntries {
				if !hasProcessBlock(a.Processes, e.Name) {
					total++
				}
			}
			add(rng, fmt.Sprintf("Too many process types (%d; the limit is %d)", total, MaxProcessTypes),
				"Each process type is a task group of the app's Nomad job; run related work in one process type, or split the app into several apps.")
		}
		return types > MaxProcessTypes
	}
	seen := map[string]hcl.Range{}
	for _, pb := range a.Processes {
		if prev, dup := seen[pb.Name]; dup {
			add(pb.NameRange, "Duplicate process type", "Process type %s is already declared on line %d; keep one block per process type.", short(pb.Name), prev.Start.Line)
			continue
		}
		seen[pb.Name] = pb.NameRange
		if tooMany(pb.DefRange) {
			continue
		}
		spec.Processes = append(spec.Processes, resolveProcess(pb, procfile, a.Procfile != nil, add))
	}
	for _, e := range procfileEntries {
		if _, ok := seen[e.Name]; ok || tooMany(e.Range) {
			continue
		}
		p := Process{Name: e.Name, Command: e.Command, Count: 1, Max: MaxCount, MemoryMB: DefaultMemoryMB, Size: SizeDedicated}
		if e.Name == "web" {
			p.HealthCheck = "/"
		} else {
			p.Count = 0
		}
		spec.Processes = append(spec.Processes, p)
	}
	spec.Release = takeRelease(spec, a.Processes, add)
	if len(spec.Processes) == 0 && !diags.HasErrors() {
		add(a.DefRange, "No process types", `App %s runs nothing; add a block such as process "web" { command = "thin start -p $PORT" }, or procfile = "Procfile".`, short(a.Name))
	}
	sortProcesses(spec.Processes)

	spec.Config = resolveConfig(a.Config, &diags)
	spec.Addons = resolveAddons(a.Addons, add)
	spec.Schedules = resolveSchedules(a.Schedules, add)
	spec.Domains = resolveDomains(a.Domains, &diags)
	spec.Buildpacks = resolveBuildpacks(a.Buildpacks, base, &diags)
	if len(spec.Domains) > 0 && spec.Process("web") == nil {
		add(a.Domains.Range(), "Domains without a web process", "The router sends a domain's requests to web dynos; add a process \"web\" block or remove the domains.")
	}
	if a.Timeout != nil {
		d, err := time.ParseDuration(*a.Timeout)
		switch {
		case err != nil:
			add(a.TimeoutRange, "Invalid timeout", "%s is not a duration; write it like \"30s\" or \"2m\".", short(*a.Timeout))
		case d <= 0 || d > MaxTimeout:
			add(a.TimeoutRange, "Timeout out of range", "The router timeout must be more than 0 and at most %s; %s is not.", MaxTimeout, d)
		default:
			spec.Timeout = d
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return spec, diags
}

func resolveProcess(pb processBlock, procfile map[string]ProcfileEntry, haveProcfile bool,
	add func(hcl.Range, string, string, ...any)) Process {
	p := Process{Name: pb.Name, Count: 1, Max: MaxCount, MemoryMB: DefaultMemoryMB, Size: SizeDedicated}
	if pb.Size != nil {
		switch *pb.Size {
		case SizeDedicated, SizeShared:
			p.Size = *pb.Size
		default:
			add(pb.SizeRange, "Invalid dyno size", "%s is not a dyno size; write \"dedicated\" (a core of its own) or \"shared\" (one core, shared with other dynos).", short(*pb.Size))
		}
	}
	if pb.Name != "web" {
		p.Count = 0
	}
	if !procNameRe.MatchString(pb.Name) {
		add(pb.NameRange, "Invalid process type name", "%s is not a process type name; use lowercase letters, digits and underscores, starting with a letter (at most %d).", short(pb.Name), MaxProcessNameLength)
	}
	command := ""
	if pb.Command != nil {
		command = strings.TrimSpace(*pb.Command)
	}
	commandErr := checkCommand("Process type "+short(pb.Name), command)
	switch {
	case pb.Command != nil && command == "":
		add(pb.CommandRange, "Empty command", "Process type %s has an empty command; write the command its dynos run.", short(pb.Name))
	case pb.Command != nil && commandErr != nil:
		add(pb.CommandRange, commandErr.Summary, "%s", commandErr.Detail)
	case pb.Command != nil:
		p.Command = command
	case procfile[pb.Name].Command != "":
		p.Command = procfile[pb.Name].Command
	case haveProcfile:
		add(pb.DefRange, "Missing command", "Process type %s is neither in the Procfile nor given a command; add `command = \"...\"` or a Procfile line.", short(pb.Name))
	default:
		add(pb.DefRange, "Missing command", "Process type %s has no command; add `command = \"...\"`, or `procfile = \"Procfile\"` to the app block.", short(pb.Name))
	}
	p.Autoscale = resolveAutoscale(&pb, add)
	resolveCounts(pb, &p, add)
	if pb.Memory != nil {
		if *pb.Memory < MinMemoryMB || *pb.Memory > MaxMemoryMB {
			add(pb.MemoryRange, "Memory out of range", "memory is in MB, from %d to %d; %d is not.", MinMemoryMB, MaxMemoryMB, *pb.Memory)
		}
		p.MemoryMB = *pb.Memory
	}
	if pb.Name == "web" {
		p.HealthCheck = "/"
	}
	if pb.HealthCheck != nil {
		pathProblem := badHealthCheckPath(*pb.HealthCheck)
		switch {
		case pb.Name != "web":
			add(pb.HealthCheckRange, "Health check on a non-web process", "Only web dynos serve HTTP, so only process \"web\" takes health_check; remove it from %s.", short(pb.Name))
		case len(*pb.HealthCheck) > MaxHealthCheckBytes:
			add(pb.HealthCheckRange, fmt.Sprintf("Health check path too long (%d bytes; the limit is %d)", len(*pb.HealthCheck), MaxHealthCheckBytes),
				"Consul requests this path every few seconds; give a short path such as \"/health\".")
		case pathProblem != "":
			add(pb.HealthCheckRange, "Invalid health check path", "%s", pathProblem)
		default:
			p.HealthCheck = *pb.HealthCheck
		}
	}
	return p
}

// badHealthCheckPath says why path cannot be the path Consul requests of a web dyno, or
// is "". Nomad refuses a path that url.Parse refuses, but only when the deploy
// registers the job, after it provisioned add-ons and ran the release phase.
func badHealthCheckPath(path string) string {
	if !strings.HasPrefix(path, "/") {
		return fmt.Sprintf("%s is not a URL path; write one that starts with a slash, such as \"/health\".", short(path))
	}
	if bad := badChar(path, noControls); bad != "" {
		return fmt.Sprintf("%s holds %s; write a path of printable UTF-8 characters, such as \"/health\".", short(path), bad)
	}
	if strings.HasPrefix(path, "//") {
		return fmt.Sprintf("%s starts with two slashes, which would make what follows a host name rather than a path on the dyno; write one slash.", short(path))
	}
	if i := strings.IndexAny(path, " \t#"); i >= 0 {
		return fmt.Sprintf("%s holds %q, which a URL path cannot; percent-encode it (%%20 for a space, %%09 for a tab, %%23 for #).", short(path), path[i:i+1])
	}
	if _, err := url.Parse(path); err != nil {
		return fmt.Sprintf("%s is not a URL path (%v); write %% only to start an escape such as %%20.", short(path), errors.Unwrap(err))
	}
	return ""
}

func resolveConfig(blocks []configBlock, diags *hcl.Diagnostics) map[string]string {
	if len(blocks) == 0 {
		return nil
	}
	for _, b := range blocks[1:] {
		*diags = append(*diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "More than one config block",
			Detail: fmt.Sprintf("Config vars are already set in the block on line %d; put them all in one config block.", blocks[0].DefRange.Start.Line), Subject: b.DefRange.Ptr()})
	}
	attrs := make([]*hcl.Attribute, 0, len(blocks[0].Vars))
	for _, attr := range blocks[0].Vars {
		attrs = append(attrs, attr)
	}
	sort.Slice(attrs, func(i, j int) bool { return attrs[i].NameRange.Start.Byte < attrs[j].NameRange.Start.Byte })
	if e := checkConfigCount(len(attrs)); e != nil {
		*diags = append(*diags, e.diag(attrs[MaxConfigVars].NameRange))
		return nil
	}
	config := map[string]string{}
	size, largest, largestSize := 0, "", -1
	for _, attr := range attrs {
		k := attr.Name
		if e := checkConfigKeyLength(k); e != nil {
			*diags = append(*diags, e.diag(attr.NameRange))
			continue
		}
		if err := ValidateConfigKey(k); err != nil {
			*diags = append(*diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid config var name",
				Detail: err.Error(), Subject: attr.NameRange.Ptr()})
			continue
		}
		v, vd := attr.Expr.Value(nil)
		*diags = append(*diags, vd...)
		if vd.HasErrors() {
			continue
		}
		s, err := convert.Convert(v, cty.String)
		if err != nil || s.IsNull() || !s.IsKnown() {
			*diags = append(*diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid config var value",
				Detail: fmt.Sprintf("%s must be a string, number or bool; write it in quotes.", k), Subject: attr.Expr.Range().Ptr()})
			continue
		}
		if e := checkConfigValue(k, s.AsString()); e != nil {
			*diags = append(*diags, e.diag(attr.Expr.Range()))
			continue
		}
		if bad := badChar(s.AsString(), anyControls); bad != "" {
			*diags = append(*diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid config var value",
				Detail: fmt.Sprintf("%s holds %s, which no environment variable can carry.", k, bad), Subject: attr.Expr.Range().Ptr()})
			continue
		}
		n := len(k) + len(s.AsString())
		size += n
		if n > largestSize {
			largest, largestSize = k, n
		}
		config[k] = s.AsString()
	}
	if e := checkConfigSize(size, largest, largestSize); e != nil {
		*diags = append(*diags, e.diag(blocks[0].DefRange))
	}
	return config
}

// takeRelease moves the release process type out of the spec's process types: it runs
// once per release in a one-off dyno and has no dynos, so a process "release" block may
// not give it a count, a min, a max or a health check.
func takeRelease(spec *Spec, blocks []processBlock, add func(hcl.Range, string, string, ...any)) *Process {
	var release *Process
	kept := spec.Processes[:0]
	for i := range spec.Processes {
		if spec.Processes[i].Name != ReleaseProcess {
			kept = append(kept, spec.Processes[i])
			continue
		}
		p := spec.Processes[i]
		p.Count, p.Min, p.Max, p.HealthCheck = 0, 0, 0, ""
		release = &p
	}
	spec.Processes = kept
	for _, pb := range blocks {
		if pb.Name != ReleaseProcess {
			continue
		}
		for _, attr := range []struct {
			set  bool
			name string
			rng  hcl.Range
		}{{pb.Count != nil, "count", pb.CountRange}, {pb.Min != nil, "min", pb.MinRange}, {pb.Max != nil, "max", pb.MaxRange}} {
			if attr.set {
				add(attr.rng, "Release process with "+attr.name, "Process type release is the release phase: its command runs once per release, in a one-off dyno, before the new dynos start; it has no dynos, so remove %s.", attr.name)
			}
		}
	}
	return release
}

// reservedAppPrefixes name Nomad jobs that are not apps, such as the memcached
// add-on's jobs; apps share Nomad's job IDs with them.
var reservedAppPrefixes = []string{"addon-", "dyno-"}

// ValidateAppName says why name cannot be an app's name, or nil.
func ValidateAppName(name string) error {
	if !appNameRe.MatchString(name) {
		return fmt.Errorf("%s is not an app name; use 2 to 30 lowercase letters, digits and dashes, starting with a letter and not ending with a dash", short(name))
	}
	for _, p := range reservedAppPrefixes {
		if strings.HasPrefix(name, p) {
			return fmt.Errorf("%q starts with %q, which Dynogrid keeps for its own jobs; choose another name", name, p)
		}
	}
	if strings.Contains(name, "-run-") {
		return fmt.Errorf("%q contains \"-run-\", which names one-off dynos; choose another name", name)
	}
	return nil
}

// ValidateConfigKey says why k cannot be a config var's name, or nil.
func ValidateConfigKey(k string) error {
	if e := checkConfigKeyLength(k); e != nil {
		return e
	}
	if !envKeyRe.MatchString(k) {
		return fmt.Errorf("%s is not a config var name; use uppercase letters, digits and underscores, not starting with a digit", short(k))
	}
	if reservedEnv[k] {
		return fmt.Errorf("%s is set by Dynogrid on every dyno and cannot be a config var", k)
	}
	return nil
}

func resolveAddons(blocks []addonBlock, add func(hcl.Range, string, string, ...any)) []Addon {
	if len(blocks) > MaxAddons {
		add(blocks[MaxAddons].DefRange, fmt.Sprintf("Too many add-ons (%d; the limit is %d)", len(blocks), MaxAddons),
			"%s", "Attach the add-ons the app uses; several process types can share one attachment.")
		return nil
	}
	var addons []Addon
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		a := Addon{Service: b.Service, Name: b.Service}
		if !procNameRe.MatchString(b.Service) {
			add(b.NameRange, "Invalid add-on", "%s is not an add-on name; use the name of an installed add-on plugin, such as \"postgres\".", short(b.Service))
			continue
		}
		rng := b.NameRange
		if b.As != nil {
			a.Name, rng = *b.As, b.AsRange
			if !appNameRe.MatchString(a.Name) {
				add(b.AsRange, "Invalid add-on name", "%s is not an attachment name; use lowercase letters, digits and dashes.", short(a.Name))
				continue
			}
		}
		if b.Plan != nil {
			if !planRe.MatchString(*b.Plan) {
				add(b.PlanRange, "Invalid add-on plan", "%s is not a plan name; plans are lowercase letters, digits and dashes, at most %d, such as \"mini\" (`dyno addons --available` lists them).", short(*b.Plan), MaxPlanBytes)
				continue
			}
			a.Plan = *b.Plan
		}
		if prev, dup := seen[a.Name]; dup {
			add(rng, "Duplicate add-on", "An add-on named %q is already attached on line %d; give this one another name with `as = \"...\"`.", a.Name, prev.Start.Line)
			continue
		}
		seen[a.Name] = rng
		addons = append(addons, a)
	}
	return addons
}

// resolveDomains reads the domains list element by element, so that each diagnostic
// points at the domain it is about.
func resolveDomains(expr hcl.Expression, diags *hcl.Diagnostics) []string {
	add := func(rng hcl.Range, summary, detail string) {
		*diags = append(*diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng.Ptr()})
	}
	list := stringList{
		Name:        "domains",
		Example:     `domains is a list of host names, such as ["www.example.com", "example.com"].`,
		Max:         MaxDomains,
		TooMany:     "Route the app's other names to one of its domains with a redirect, or split the app.",
		ElemSummary: "Invalid domain",
		NotString: func(i int) string {
			return fmt.Sprintf("Domain %d is not a string; write host names in quotes, such as \"www.example.com\".", i)
		},
	}
	var domains []string
	seen := map[string]hcl.Range{}
	for _, e := range list.read(expr, diags) {
		raw := e.Value
		d := strings.ToLower(strings.TrimSuffix(raw, "."))
		if len(d) > MaxDomainBytes {
			add(e.Range, fmt.Sprintf("Domain too long (%d bytes; the limit is %d)", len(d), MaxDomainBytes),
				"A host name has at most 253 characters; give the app's real host name.")
			continue
		}
		if !validHostname(d) {
			add(e.Range, "Invalid domain", fmt.Sprintf("Domain %d, %s, is not a host name; write names such as \"www.example.com\", without scheme, port or path.", e.Index, short(raw)))
			continue
		}
		if prev, dup := seen[d]; dup {
			add(e.Range, "Duplicate domain", fmt.Sprintf("%s is already listed on line %d; list each domain once.", short(d), prev.Start.Line))
			continue
		}
		seen[d] = e.Range
		domains = append(domains, d)
	}
	if n := len(strings.Join(domains, ",")); n > MaxDomainsBytes {
		add(expr.Range(), fmt.Sprintf("Domains too long together (%d bytes with commas; the limit is %d)", n, MaxDomainsBytes),
			"The router reads an app's domains from one Consul service meta value, which holds 512 bytes. Route the app's other names to one of its domains with a redirect, or split the app.")
		return nil
	}
	return domains
}

func hasProcessBlock(blocks []processBlock, name string) bool {
	for _, b := range blocks {
		if b.Name == name {
			return true
		}
	}
	return false
}

func validHostname(h string) bool {
	if len(h) == 0 || len(h) > MaxDomainBytes || net.ParseIP(h) != nil {
		return false
	}
	labels := strings.Split(h, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !hostLabelRe.MatchString(l) {
			return false
		}
	}
	return true
}

func sortProcesses(ps []Process) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
}

func errDiag(summary, detail string) hcl.Diagnostics {
	return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: summary, Detail: detail}}
}
