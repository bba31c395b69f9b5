package addon

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on what an add-on may answer. The host enforces them; the SDK checks them too,
// so that an author sees the problem in their own tests.
const (
	MaxEnvVars       = 32
	MaxEnvValueBytes = 4096
	MaxResourceID    = 255
	MaxMessage       = 1024
)

var (
	addonNameRe  = regexp.MustCompile(`^[a-z][a-z0-9-]{0,29}$`)
	planNameRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	envNameRe    = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	requestIDRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	appNameRe    = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	attachNameRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,62}$`)
)

// reservedEnv are variables the platform sets or that change how every program runs.
var reservedEnv = map[string]bool{"PORT": true, "DYNO": true, "PATH": true, "HOME": true, "USER": true, "SHELL": true, "PWD": true, "TMPDIR": true}

var reservedEnvPrefixes = []string{"LD_", "NOMAD_", "CONSUL_", "DYNO_"}

// ValidAddonName tells whether name can name an add-on (and its binary).
func ValidAddonName(name string) bool { return addonNameRe.MatchString(name) }

// ValidateEnvName checks one variable name: ^[A-Z_][A-Z0-9_]*$, not reserved.
func ValidateEnvName(name string) error {
	if !envNameRe.MatchString(name) || len(name) > 128 {
		return fmt.Errorf("variable name %q is not of the form [A-Z_][A-Z0-9_]* (at most 128)", name)
	}
	if reservedEnv[name] {
		return fmt.Errorf("variable name %q is reserved by the platform", name)
	}
	for _, p := range reservedEnvPrefixes {
		if strings.HasPrefix(name, p) {
			return fmt.Errorf("variable name %q starts with the reserved prefix %s", name, p)
		}
	}
	return nil
}

// ValidateDescription checks what Describe answered.
func ValidateDescription(d Description) error {
	var errs []error
	if !addonNameRe.MatchString(d.Name) {
		errs = append(errs, fmt.Errorf("name %q is not of the form [a-z][a-z0-9-]* (at most 30)", d.Name))
	}
	if !printableLine(d.Version, 64) {
		errs = append(errs, fmt.Errorf("version %q is not one printable line of at most 64 characters", d.Version))
	}
	if !printableLine(d.Summary, 200) {
		errs = append(errs, fmt.Errorf("summary is not one printable line of at most 200 characters"))
	}
	if len(d.Plans) == 0 {
		errs = append(errs, errors.New("no plans"))
	}
	plans := map[string]bool{}
	for i, p := range d.Plans {
		if !planNameRe.MatchString(p.Name) {
			errs = append(errs, fmt.Errorf("plans[%d]: name %q is not of the form [a-z0-9][a-z0-9-]*", i, p.Name))
		}
		if plans[p.Name] {
			errs = append(errs, fmt.Errorf("plans[%d]: plan %q listed twice", i, p.Name))
		}
		if !printableLine(p.Description, 200) {
			errs = append(errs, fmt.Errorf("plans[%d]: description is not one printable line of at most 200 characters", i))
		}
		plans[p.Name] = true
	}
	if d.DefaultPlan != "" && !plans[d.DefaultPlan] {
		errs = append(errs, fmt.Errorf("default plan %q is not one of the plans", d.DefaultPlan))
	}
	if len(d.EnvVars) == 0 {
		errs = append(errs, errors.New("no variables declared (env_vars is empty)"))
	}
	if len(d.EnvVars) > MaxEnvVars {
		errs = append(errs, fmt.Errorf("%d variables declared, at most %d allowed", len(d.EnvVars), MaxEnvVars))
	}
	seen := map[string]bool{}
	for _, v := range d.EnvVars {
		if err := ValidateEnvName(v); err != nil {
			errs = append(errs, fmt.Errorf("env_vars: %w", err))
		}
		if seen[v] {
			errs = append(errs, fmt.Errorf("env_vars: %q listed twice", v))
		}
		seen[v] = true
	}
	return join(errs)
}

// ResolvePlan returns the plan a request uses: plan itself, or the default plan when
// plan is "", with an error when the add-on has no such plan.
func (d Description) ResolvePlan(plan string) (string, error) {
	if plan == "" {
		if d.DefaultPlan != "" {
			return d.DefaultPlan, nil
		}
		if len(d.Plans) > 0 {
			return d.Plans[0].Name, nil
		}
		return "", fmt.Errorf("add-on %s has no plans", d.Name)
	}
	names := make([]string, 0, len(d.Plans))
	for _, p := range d.Plans {
		if p.Name == plan {
			return plan, nil
		}
		names = append(names, p.Name)
	}
	return "", fmt.Errorf("add-on %s has no plan %q (plans: %s)", d.Name, plan, strings.Join(names, ", "))
}

// ValidateProvisionRequest checks a request before it is sent or served.
func ValidateProvisionRequest(r ProvisionRequest) error {
	var errs []error
	if !requestIDRe.MatchString(r.RequestID) {
		errs = append(errs, fmt.Errorf("request ID %q is not of the form [A-Za-z0-9][A-Za-z0-9._-]* (at most 128)", r.RequestID))
	}
	if !appNameRe.MatchString(r.App) {
		errs = append(errs, fmt.Errorf("app name %q is not of the form [a-z][a-z0-9-]* (at most 63)", r.App))
	}
	if r.Plan != "" && !planNameRe.MatchString(r.Plan) {
		errs = append(errs, fmt.Errorf("plan %q is not of the form [a-z0-9][a-z0-9-]*", r.Plan))
	}
	if r.Name != "" && !attachNameRe.MatchString(r.Name) {
		errs = append(errs, fmt.Errorf("attachment name %q is not of the form [A-Za-z][A-Za-z0-9_-]* (at most 63)", r.Name))
	}
	return join(errs)
}

// ValidateDeprovisionRequest checks a request before it is sent or served.
func ValidateDeprovisionRequest(r DeprovisionRequest) error {
	var errs []error
	if !requestIDRe.MatchString(r.RequestID) {
		errs = append(errs, fmt.Errorf("request ID %q is not of the form [A-Za-z0-9][A-Za-z0-9._-]* (at most 128)", r.RequestID))
	}
	if !appNameRe.MatchString(r.App) {
		errs = append(errs, fmt.Errorf("app name %q is not of the form [a-z][a-z0-9-]* (at most 63)", r.App))
	}
	if err := validResourceID(r.ResourceID); err != nil {
		errs = append(errs, err)
	}
	return join(errs)
}

// ValidateResource checks what Provision answered against what Describe declared.
func ValidateResource(d Description, r Resource) error {
	var errs []error
	if err := validResourceID(r.ID); err != nil {
		errs = append(errs, err)
	}
	if len(r.Env) == 0 {
		errs = append(errs, errors.New("no variables in the answer"))
	}
	declared := map[string]bool{}
	for _, v := range d.EnvVars {
		declared[v] = true
	}
	keys := make([]string, 0, len(r.Env))
	for k := range r.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := r.Env[k]
		if err := ValidateEnvName(k); err != nil {
			errs = append(errs, err)
			continue
		}
		if !declared[k] {
			errs = append(errs, fmt.Errorf("variable %s was not declared by Describe (declared: %s)", k, strings.Join(d.EnvVars, ", ")))
			continue
		}
		if err := validEnvValue(v); err != nil {
			errs = append(errs, fmt.Errorf("variable %s: %w", k, err))
		}
	}
	for _, v := range d.EnvVars {
		if _, ok := r.Env[v]; !ok && len(r.Env) > 0 {
			errs = append(errs, fmt.Errorf("declared variable %s is missing from the answer", v))
		}
	}
	if !printableLine(r.Message, MaxMessage) {
		errs = append(errs, fmt.Errorf("message is not one printable line of at most %d characters", MaxMessage))
	}
	return join(errs)
}

func validResourceID(id string) error {
	if id == "" {
		return errors.New("empty resource ID")
	}
	if len(id) > MaxResourceID {
		return fmt.Errorf("resource ID is %d bytes long, at most %d allowed", len(id), MaxResourceID)
	}
	for _, r := range id {
		if r <= ' ' || r > '~' {
			return fmt.Errorf("resource ID %q has a character that is not printable ASCII or is a space", id)
		}
	}
	return nil
}

func validEnvValue(v string) error {
	switch {
	case v == "":
		return errors.New("empty value")
	case len(v) > MaxEnvValueBytes:
		return fmt.Errorf("value is %d bytes long, at most %d allowed", len(v), MaxEnvValueBytes)
	case !utf8.ValidString(v):
		return errors.New("value is not valid UTF-8")
	case strings.ContainsRune(v, 0):
		return errors.New("value contains a NUL byte")
	case strings.ContainsAny(v, "\r\n"):
		return errors.New("value contains a line break")
	}
	for _, r := range v {
		if unicode.IsControl(r) && r != '\t' {
			return fmt.Errorf("value contains the control character %U", r)
		}
	}
	return nil
}

// printableLine allows "" and one line of printable characters, at most max bytes:
// what OneLine leaves as it is.
func printableLine(s string, max int) bool { return OneLine(s, max) == s }

// OneLine returns s as one printable line of at most max bytes, safe to show on a
// terminal: line breaks and tabs become spaces, other control characters and bytes
// that are not UTF-8 become visible escapes (\x1b, \u009b, \xff), and what does not fit
// is cut, the line then ending with "…". A string that is already such a line (as a
// Resource.Message must be) is returned as it is. The host passes every error message
// a plugin sends through it.
func OneLine(s string, max int) string {
	cut := "…"
	if max < len(cut) {
		cut = ""
	}
	i := 0
	for i < len(s) && s[i] >= ' ' && s[i] < 0x7f {
		i++
	}
	if i == len(s) && len(s) <= max {
		return s
	}
	b := make([]byte, 0, min(len(s), max))
	keep := 0 // where b is cut, leaving room for the cut mark
	for i = 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		piece := s[i : i+size]
		switch {
		case r == utf8.RuneError && size == 1:
			piece = fmt.Sprintf(`\x%02x`, s[i])
		case r == '\n' || r == '\r' || r == '\t':
			piece = " "
		case r < utf8.RuneSelf && unicode.IsControl(r):
			piece = fmt.Sprintf(`\x%02x`, r)
		case unicode.IsControl(r):
			piece = fmt.Sprintf(`\u%04x`, r)
		}
		if len(b)+len(piece) > max {
			return string(append(b[:keep], cut...))
		}
		b = append(b, piece...)
		if len(b)+len(cut) <= max {
			keep = len(b)
		}
		i += size
	}
	return string(b)
}

// join joins errors on one line of at most MaxMessage bytes, so that a CLI shows them
// whole, however many problems (and however long the names quoted) an answer has.
func join(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(OneLine(strings.Join(msgs, "; "), MaxMessage))
}
