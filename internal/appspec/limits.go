package appspec

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Limits on what an app may ask for. Every one of them is checked before anything
// reaches Nomad; docs/apps.md lists them.
const (
	// MaxSpecBytes bounds dyno.hcl; a larger file is not read past the limit.
	MaxSpecBytes = 256 * 1024
	// MaxNesting bounds how deeply brackets, blocks, strings, template directives and
	// operators nest in dyno.hcl (checkNesting): the parser recurses once per level.
	MaxNesting = 32

	MaxProcfileBytes = 64 * 1024
	MaxProcfileLines = 1000

	MaxProcessTypes      = 50
	MaxProcessNameLength = 30
	MaxCommandBytes      = 4096
	MaxCount             = 100
	MinMemoryMB          = 64
	MaxMemoryMB          = 65536
	MaxHealthCheckBytes  = 1024
	MaxTimeout           = 10 * time.Minute

	// Config vars: their names and values together take at most MaxConfigBytes, as on
	// Heroku. The limits hold for the whole environment of a release: the spec's config
	// vars, those set with `dyno config:set` and the add-ons' variables.
	MaxConfigVars       = 500
	MaxConfigKeyBytes   = 255
	MaxConfigValueBytes = 16 * 1024
	MaxConfigBytes      = 32 * 1024

	MaxDomains     = 100
	MaxDomainBytes = 253
	// MaxDomainsBytes bounds the domains joined with commas: they reach the router as one
	// value of the web dynos' Consul service meta, which Consul refuses over 512 bytes
	// (and with it the dynos' registration: no dyno would be routed).
	MaxDomainsBytes = 512

	MaxAddons = 50
	// MaxPlanBytes is the longest plan name the add-on SDK accepts from a plugin.
	MaxPlanBytes = 63
)

// LimitError is a broken limit or rule: Summary names it and the value seen, Detail
// says what to do.
type LimitError struct {
	Summary, Detail string
}

func (e *LimitError) Error() string { return e.Summary + ": " + e.Detail }

func (e *LimitError) diag(rng hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: e.Summary, Detail: e.Detail, Subject: rng.Ptr()}
}

func checkConfigCount(n int) *LimitError {
	if n <= MaxConfigVars {
		return nil
	}
	return &LimitError{fmt.Sprintf("Too many config vars (%d; the limit is %d)", n, MaxConfigVars),
		"Remove the config vars the app no longer reads, or put related settings in one var."}
}

func checkConfigKeyLength(k string) *LimitError {
	if len(k) <= MaxConfigKeyBytes {
		return nil
	}
	return &LimitError{fmt.Sprintf("Config var name too long (%d bytes; the limit is %d)", len(k), MaxConfigKeyBytes),
		fmt.Sprintf("%s is not a usable name; choose a shorter one.", short(k))}
}

func checkConfigValue(k, v string) *LimitError {
	if len(v) <= MaxConfigValueBytes {
		return nil
	}
	return &LimitError{fmt.Sprintf("Config var too large (%s is %d bytes; the limit is %d)", k, len(v), MaxConfigValueBytes),
		"Keep large data such as files or certificate bundles in the app's code or in an add-on, and put only its location or key in the config var."}
}

func checkConfigSize(size int, largest string, largestSize int) *LimitError {
	if size <= MaxConfigBytes {
		return nil
	}
	return &LimitError{fmt.Sprintf("Config vars too large (%d bytes; the limit is %d)", size, MaxConfigBytes),
		fmt.Sprintf("Names and values together must fit in %d bytes; the largest var is %s (%d bytes). Remove vars the app no longer reads, or shorten the largest.", MaxConfigBytes, largest, largestSize)}
}

// ValidateEnv says which limit the environment of a release breaks, or nil: the number
// of config vars, the length of each name and value, and their total size. It applies
// to everything a release gives its dynos, whether from the spec, `dyno config:set` or
// an add-on.
func ValidateEnv(env map[string]string) error {
	if e := checkConfigCount(len(env)); e != nil {
		return e
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	size, largest, largestSize := 0, "", -1
	for _, k := range keys {
		if e := checkConfigKeyLength(k); e != nil {
			return e
		}
		if e := checkConfigValue(k, env[k]); e != nil {
			return e
		}
		n := len(k) + len(env[k])
		size += n
		if n > largestSize {
			largest, largestSize = k, n
		}
	}
	if e := checkConfigSize(size, largest, largestSize); e != nil {
		return e
	}
	return nil
}

// readLimited reads at most max+1 bytes of path; more than max means the file is too
// large, and the caller reports it without reading the rest.
func readLimited(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, int64(max)+1))
}

func specTooLarge(filename string) hcl.Diagnostics {
	return hcl.Diagnostics{{Severity: hcl.DiagError,
		Summary: fmt.Sprintf("App spec too large (%s is over the limit of %d bytes)", filename, MaxSpecBytes),
		Detail:  "A spec describes one app's process types, config vars, domains and add-ons; keep data out of it, and set large config vars with `dyno config:set`.",
		Subject: &hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos}}}
}

// posAt is the line and column of byte offset off in src.
func posAt(src []byte, off int) hcl.Pos {
	off = min(off, len(src))
	line := 1 + bytes.Count(src[:off], []byte("\n"))
	col := off - (bytes.LastIndexByte(src[:off], '\n') + 1) + 1
	return hcl.Pos{Line: line, Column: col, Byte: off}
}

// checkNesting rejects a spec that nests deeper than MaxNesting, before the recursive
// parser sees it. It works on tokens, so brackets inside strings and comments do not
// count. A level is a bracket, block, string or interpolation until it closes, a
// template %{if} or %{for} until its %{endif} or %{endfor}, and an operator (unary,
// binary, the ? of a conditional, a splat, an index) until its expression ends: the
// parser recurses once per unary operator, conditional and splat, and the value of a
// chain of binary operators or indexes is a tree as deep as the chain. An expression
// ends at a comma, at the close of its bracket, and at a newline only in a block or an
// object: inside parentheses, brackets, interpolations and for expressions the parser
// skips newlines, so a chain goes on across lines there.
func checkNesting(filename string, src []byte) hcl.Diagnostics {
	tokens, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	type level struct {
		newlineEndsExpr bool // a block or an object, where a newline ends an expression
		directive       bool // a template %{if} or %{for}, open until %{endif} or %{endfor}
		operators       int  // operators of the level's current expression
	}
	stack := []level{{newlineEndsExpr: true}} // the file's body
	depth := 0                                // levels open, stack[0] excepted, plus their operators
	push := func(l level) { stack = append(stack, l); depth++ }
	endExpr := func(l *level) { depth -= l.operators; l.operators = 0 }
	for i, t := range tokens {
		top := &stack[len(stack)-1]
		switch t.Type {
		case hclsyntax.TokenOBrace:
			push(level{newlineEndsExpr: !startsForExpr(tokens[i+1:])})
		case hclsyntax.TokenOBrack:
			if i > 0 && endsValue(tokens[i-1]) { // an index or a splat [*], which nests the value it follows
				top.operators++
				depth++
			}
			push(level{})
		case hclsyntax.TokenOParen, hclsyntax.TokenOQuote, hclsyntax.TokenOHeredoc,
			hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			push(level{})
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenCQuote,
			hclsyntax.TokenCHeredoc, hclsyntax.TokenTemplateSeqEnd:
			if len(stack) > 1 {
				endExpr(top)
				stack = stack[:len(stack)-1]
				depth--
			}
		case hclsyntax.TokenMinus, hclsyntax.TokenBang, hclsyntax.TokenQuestion, hclsyntax.TokenPlus,
			hclsyntax.TokenStar, hclsyntax.TokenSlash, hclsyntax.TokenPercent, hclsyntax.TokenAnd, hclsyntax.TokenOr,
			hclsyntax.TokenEqualOp, hclsyntax.TokenNotEqual, hclsyntax.TokenLessThan, hclsyntax.TokenLessThanEq,
			hclsyntax.TokenGreaterThan, hclsyntax.TokenGreaterThanEq:
			top.operators++
			depth++
		case hclsyntax.TokenComma:
			endExpr(top)
		case hclsyntax.TokenNewline:
			if top.newlineEndsExpr {
				endExpr(top)
			}
		case hclsyntax.TokenIdent:
			if i == 0 || tokens[i-1].Type != hclsyntax.TokenTemplateControl {
				break
			}
			// The directive's level sits under the %{ ... } that opens or closes it.
			switch string(t.Bytes) {
			case "if", "for":
				ctrl := *top
				stack[len(stack)-1] = level{directive: true}
				stack = append(stack, ctrl)
				depth++
			case "endif", "endfor":
				if len(stack) > 2 && stack[len(stack)-2].directive {
					endExpr(&stack[len(stack)-2])
					stack = append(stack[:len(stack)-2], *top)
					depth--
				}
			}
		}
		if depth > MaxNesting {
			return hcl.Diagnostics{{Severity: hcl.DiagError,
				Summary: fmt.Sprintf("Nesting too deep (more than %d levels)", MaxNesting),
				Detail:  "Brackets, blocks, strings and operators nest this deep here; an app spec needs only a few levels. Write the value out flat.",
				Subject: t.Range.Ptr()}}
		}
	}
	return nil
}

// endsValue says whether t can end a value, so that a [ after it opens an index rather
// than a tuple: the keywords of a for expression cannot.
func endsValue(t hclsyntax.Token) bool {
	switch t.Type {
	case hclsyntax.TokenIdent:
		kw := string(t.Bytes)
		return kw != "for" && kw != "in" && kw != "if"
	case hclsyntax.TokenNumberLit, hclsyntax.TokenCParen, hclsyntax.TokenCBrack, hclsyntax.TokenCBrace,
		hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc:
		return true
	}
	return false
}

// startsForExpr says whether the tokens after an opening brace begin a for expression,
// in which, unlike in an object, the parser skips newlines.
func startsForExpr(tokens hclsyntax.Tokens) bool {
	for _, t := range tokens {
		if t.Type != hclsyntax.TokenNewline {
			return t.Type == hclsyntax.TokenIdent && string(t.Bytes) == "for"
		}
	}
	return false
}

// short quotes s for a diagnostic, cut to a readable length.
func short(s string) string {
	const n = 64
	if len(s) <= n {
		return fmt.Sprintf("%q", s)
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return fmt.Sprintf("%q... (%d bytes)", s[:cut], len(s))
}
