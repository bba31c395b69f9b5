package appspec

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

var procNameRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,29}$`)

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
				Detail:  fmt.Sprintf("%q has no colon; write `name: command`, for example `web: thin start -p $PORT`.", trimmed)})
		case !procNameRe.MatchString(name):
			diags = diags.Append(&hcl.Diagnostic{Severity: hcl.DiagError, Subject: rng.Ptr(),
				Summary: "Invalid process type name",
				Detail:  fmt.Sprintf("%q is not a process type name; use lowercase letters, digits and underscores, starting with a letter (at most 30), for example `web` or `worker`.", name)})
		case command == "":
			diags = diags.Append(&hcl.Diagnostic{Severity: hcl.DiagError, Subject: rng.Ptr(),
				Summary: "Missing command",
				Detail:  fmt.Sprintf("Process type %q has no command; write the command after the colon.", name)})
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
