package appspec

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// utf8BOM is the byte order mark some editors write at the start of a UTF-8 file.
var utf8BOM = []byte("\ufeff")

var procNameRe = regexp.MustCompile(fmt.Sprintf(`^[a-z][a-z0-9_]{0,%d}$`, MaxProcessNameLength-1))

// checkCommand says why command, already trimmed, cannot be run, or is nil: it is
// over MaxCommandBytes, or it holds a character badChar refuses. A NUL cannot be
// passed to exec, and other control characters would be escape sequences wherever the
// command is shown (dyno schedules, dyno plan). owner names whose command it is, such
// as `Process type "web"`.
func checkCommand(owner, command string) *LimitError {
	if len(command) > MaxCommandBytes {
		return &LimitError{fmt.Sprintf("Command too long (%d bytes; the limit is %d)", len(command), MaxCommandBytes),
			fmt.Sprintf("%s has a command of %d bytes; put it in a script in the app's code and run the script.", owner, len(command))}
	}
	if bad := badChar(command, lineControls); bad != "" {
		return &LimitError{"Invalid command",
			fmt.Sprintf("%s has a command that holds %s: %s. A command is UTF-8 text with no control character but tab and line breaks; put anything else in a script in the app's code.", owner, bad, short(command))}
	}
	return nil
}

// ProcfileEntry is one line of a Procfile.
type ProcfileEntry struct {
	Name    string
	Command string
	Range   hcl.Range
}

// ParseProcfile reads a Procfile: one `name: command` a line, ended by LF or CRLF;
// blank lines and lines that start with # are ignored, and so is a leading byte order
// mark.
func ParseProcfile(filename string, src []byte) ([]ProcfileEntry, hcl.Diagnostics) {
	var entries []ProcfileEntry
	var diags hcl.Diagnostics
	if len(src) > MaxProcfileBytes {
		at := posAt(src, MaxProcfileBytes)
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Subject: &hcl.Range{Filename: filename, Start: at, End: at},
			Summary: fmt.Sprintf("Procfile too large (%s is over the limit of %d bytes)", filename, MaxProcfileBytes),
			Detail:  "A Procfile names each process type and its command on one line; put long commands in scripts in the app's code."}}
	}
	seen := map[string]hcl.Range{}
	offset := 0
	if bytes.HasPrefix(src, utf8BOM) {
		offset = len(utf8BOM)
	}
	for line := 1; offset < len(src); line++ {
		start := offset
		b, _, _ := bytes.Cut(src[offset:], []byte("\n"))
		offset += len(b) + 1
		text := strings.TrimSuffix(string(b), "\r")
		rng := hcl.Range{
			Filename: filename,
			Start:    hcl.Pos{Line: line, Column: 1, Byte: start},
			End:      hcl.Pos{Line: line, Column: len(text) + 1, Byte: start + len(text)},
		}
		if line > MaxProcfileLines {
			diags = diags.Append(&hcl.Diagnostic{Severity: hcl.DiagError, Subject: rng.Ptr(),
				Summary: fmt.Sprintf("Procfile too long (over the limit of %d lines)", MaxProcfileLines),
				Detail:  "A Procfile has a line per process type; remove the lines the app does not need."})
			break
		}
		if cr := strings.IndexByte(text, '\r'); cr >= 0 {
			at := hcl.Pos{Line: line, Column: cr + 1, Byte: start + cr}
			diags = diags.Append(&hcl.Diagnostic{Severity: hcl.DiagError, Subject: &hcl.Range{Filename: filename, Start: at, End: at},
				Summary: "Bare carriage return",
				Detail:  "Save the Procfile with LF or CRLF line endings: a carriage return without a line feed does not end a line, so this line and the next would run together."})
			continue
		}
		trimmed := strings.TrimSpace(text)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		name, command, ok := strings.Cut(trimmed, ":")
		name, command = strings.TrimSpace(name), strings.TrimSpace(command)
		unrunnable := checkCommand("Process type "+short(name), command)
		switch {
		case !ok:
			diags = diags.Append(&hcl.Diagnostic{Severity: hcl.DiagError, Subject: rng.Ptr(),
				Summary: "Malformed Procfile line",
				Detail:  fmt.Sprintf("%s has no colon; write `name: command`, for example `web: thin start -p $PORT`.", short(trimmed))})
		case !procNameRe.MatchString(name):
			diags = diags.Append(&hcl.Diagnostic{Severity: hcl.DiagError, Subject: rng.Ptr(),
				Summary: "Invalid process type name",
				Detail:  fmt.Sprintf("%s is not a process type name; use lowercase letters, digits and underscores, starting with a letter (at most %d), for example `web` or `worker`.", short(name), MaxProcessNameLength)})
		case command == "":
			diags = diags.Append(&hcl.Diagnostic{Severity: hcl.DiagError, Subject: rng.Ptr(),
				Summary: "Missing command",
				Detail:  fmt.Sprintf("Process type %s has no command; write the command after the colon.", short(name))})
		case unrunnable != nil:
			diags = diags.Append(unrunnable.diag(rng))
		case len(entries) == MaxProcessTypes && seen[name] == (hcl.Range{}):
			diags = diags.Append(&hcl.Diagnostic{Severity: hcl.DiagError, Subject: rng.Ptr(),
				Summary: fmt.Sprintf("Too many process types (over the limit of %d)", MaxProcessTypes),
				Detail:  "Each process type is a task group of the app's Nomad job; run related work in one process type, or split the app into several apps."})
			return entries, diags
		default:
			if prev, dup := seen[name]; dup {
				diags = diags.Append(&hcl.Diagnostic{Severity: hcl.DiagError, Subject: rng.Ptr(),
					Summary: "Duplicate process type",
					Detail:  fmt.Sprintf("Process type %q is already defined at line %d; keep one line per process type.", name, prev.Start.Line)})
				continue
			}
			seen[name] = rng
			entries = append(entries, ProcfileEntry{Name: name, Command: command, Range: rng})
		}
	}
	if len(entries) == 0 && !diags.HasErrors() {
		diags = diags.Append(&hcl.Diagnostic{Severity: hcl.DiagError,
			Subject: &hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos},
			Summary: "Empty Procfile",
			Detail:  "The Procfile names no process type; add a line such as `web: thin start -p $PORT`."})
	}
	return entries, diags
}
