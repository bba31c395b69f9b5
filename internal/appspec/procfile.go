package appspec

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

var procNameRe = regexp.MustCompile(fmt.Sprintf(`^[a-z][a-z0-9_]{0,%d}$`, MaxProcessNameLength-1))

func commandTooLong(process string, n int) *LimitError {
	return &LimitError{fmt.Sprintf("Command too long (%d bytes; the limit is %d)", n, MaxCommandBytes),
		fmt.Sprintf("Process type %s has a command of %d bytes; put it in a script in the app's code and run the script.", short(process), n)}
}

// ProcfileEntry is one line of a Procfile.
type ProcfileEntry struct {
	Name    string
	Command string
	Range   hcl.Range
}

// ParseProcfile reads a Procfile: one `name: command` a line; blank lines and lines that
// start with # are ignored.
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
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	offset := 0
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		rng := hcl.Range{
			Filename: filename,
			Start:    hcl.Pos{Line: line, Column: 1, Byte: offset},
			End:      hcl.Pos{Line: line, Column: len(text) + 1, Byte: offset + len(text)},
		}
		offset += len(text) + 1
		if line > MaxProcfileLines {
			diags = diags.Append(&hcl.Diagnostic{Severity: hcl.DiagError, Subject: rng.Ptr(),
				Summary: fmt.Sprintf("Procfile too long (over the limit of %d lines)", MaxProcfileLines),
				Detail:  "A Procfile has a line per process type; remove the lines the app does not need."})
			break
		}
		trimmed := strings.TrimSpace(text)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		name, command, ok := strings.Cut(trimmed, ":")
		name, command = strings.TrimSpace(name), strings.TrimSpace(command)
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
		case len(command) > MaxCommandBytes:
			diags = diags.Append(commandTooLong(name, len(command)).diag(rng))
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
	if err := sc.Err(); err != nil {
		diags = diags.Append(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unreadable Procfile",
			Detail: fmt.Sprintf("%s: %v", filename, err)})
	}
	if len(entries) == 0 && !diags.HasErrors() {
		diags = diags.Append(&hcl.Diagnostic{Severity: hcl.DiagError,
			Subject: &hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos},
			Summary: "Empty Procfile",
			Detail:  "The Procfile names no process type; add a line such as `web: thin start -p $PORT`."})
	}
	return entries, diags
}
