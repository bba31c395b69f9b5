package appspec

import (
	"fmt"
	"strings"
	"testing"
)

// configSpec is an app spec whose config block holds value as var A, which starts on
// line 4 at depth 2 (the app and config blocks).
func configSpec(value string) string {
	return "app \"shop\" {\n  process \"web\" { command = \"thin start\" }\n  config {\n    A = " + value + "\n  }\n}\n"
}

// fill repeats line until the spec that configSpec(open+lines+close) makes is as large
// as MaxSpecBytes allows.
func fill(open, line, close string) string {
	room := MaxSpecBytes - len(configSpec(open+close))
	return open + strings.Repeat(line, room/len(line)) + close
}

// TestNestingAcrossLines: inside parentheses, brackets, interpolations and for
// expressions the parser skips newlines and recurses once per operator, so a chain of
// operators split over lines nests as deep as one on a single line. Each spec here once
// passed the check: the first two, at 256 KiB, overflowed the stack ("fatal error:
// stack overflow") or took 895 MB. Each must get one diagnostic, at the token that
// goes over the limit.
func TestNestingAcrossLines(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, value, at string }{
		// ( is level 3; 28 operators a line: the 30th is the second of line 6.
		{"lines of minus in parentheses", fill("(\n", strings.Repeat("-", 28)+"\n", "1)"), "6:2"},
		{"one minus a line", fill("(\n", "-\n", "1)"), "34:1"},
		{"one bang a line", "(\n" + strings.Repeat("!\n", 40) + "true)", "34:1"},
		{"bang and minus mixed", "(\n" + strings.Repeat("!\n-\n", 20) + "1)", "34:1"},
		// Each line holds a ? and a !: the 30th operator is the ! of line 19.
		{"conditionals and bangs", "(\n" + strings.Repeat("true ? !\n", 20) + "true" + strings.Repeat(" : false", 20) + ")", "19:8"},
		{"conditional chain", "(\n" + strings.Repeat("false ? 1 :\n", 40) + "2)", "34:7"},
		{"brackets", "[\n" + strings.Repeat("-\n", 40) + "1]", "34:1"},
		// " and ${ are levels 3 and 4: the 29th minus is the one over.
		{"interpolation", "\"${\n" + strings.Repeat("-\n", 40) + "1}\"", "33:1"},
		{"for expression in braces", "{for k, v in {} : k =>\n" + strings.Repeat("-\n", 40) + "v}", "34:1"},
		{"for expression in brackets", "[for v in [] :\n" + strings.Repeat("-\n", 40) + "v]", "34:1"},
		// On one line, from column 9: the 16th minus, after 15 minuses and parentheses.
		{"minus before each parenthesis", strings.Repeat("- (", 20) + "1" + strings.Repeat(")", 20), "4:54"},
		// A chain of binary operators is a tree as deep as the chain: the 31st operator.
		{"binary chain", "1" + strings.Repeat(" + 1", 40), "4:131"},
		{"comparison chain", "1" + strings.Repeat(" < 1", 40), "4:131"},
		// Each [*] is a level, and while open its brackets and star two more: the star
		// of the 29th.
		{"full splat chain", "[]" + strings.Repeat("[*]", 40), "4:96"},
		// Each index is a level, and its brackets one more while open: the [ of the 30th.
		{"index chain", "[[]]" + strings.Repeat("[0]", 40), "4:100"},
		// Each %{if} is a level, and its %{ } one more: the if of the 29th.
		{"if directives", "\"" + strings.Repeat("%{if true}", 40) + strings.Repeat("%{endif}", 40) + "\"", "4:292"},
		// The [ of the 28th %{for x in []}.
		{"for directives", "\"" + strings.Repeat("%{for x in []}", 40) + strings.Repeat("%{endfor}", 40) + "\"", "4:399"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			src := configSpec(c.value)
			if len(src) > MaxSpecBytes {
				t.Fatalf("the spec is %d bytes, over MaxSpecBytes", len(src))
			}
			spec, diags := Parse("dyno.hcl", []byte(src))
			got := FormatDiagnostics(diags)
			want := fmt.Sprintf("dyno.hcl:%s: error: Nesting too deep (more than %d levels)", c.at, MaxNesting)
			if spec != nil || len(diags) != 1 || !strings.HasPrefix(got, want) {
				t.Errorf("got spec %v and %d diagnostics:\n%s\nwant one that starts with %q", spec, len(diags), got, want)
			}
		})
	}
}

// TestNestingAtTheLimit loads specs that nest exactly MaxNesting levels deep, in the
// shapes TestNestingAcrossLines refuses, checks their values, and checks that one
// level more is refused.
func TestNestingAtTheLimit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// value nests n levels below the config block.
		value func(n int) string
		want  string
	}{
		{"one minus a line", func(n int) string { return "(\n" + strings.Repeat("-\n", n-1) + "1)" }, "-1"},
		{"one bang a line", func(n int) string { return "(\n" + strings.Repeat("!\n", n-1) + "false)" }, "true"},
		{"conditional chain", func(n int) string { return "(\n" + strings.Repeat("false ? 1 :\n", n-1) + "2)" }, "2"},
		{"interpolation", func(n int) string { return "\"${\n" + strings.Repeat("-\n", n-2) + "1}\"" }, "1"},
		{"binary chain", func(n int) string { return "1" + strings.Repeat(" + 1", n) }, fmt.Sprint(MaxNesting - 1)},
		{"if directives", func(n int) string {
			return "\"" + strings.Repeat("%{if true}", n-2) + "x" + strings.Repeat("%{endif}", n-2) + "\""
		}, "x"},
	}
	const n = MaxNesting - 2 // below the app and config blocks
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			spec, diags := Parse("dyno.hcl", []byte(configSpec(c.value(n))))
			if diags.HasErrors() {
				t.Fatalf("refused at the limit:\n%s", FormatDiagnostics(diags))
			}
			if got := spec.Config["A"]; got != c.want {
				t.Errorf("A = %q, want %q", got, c.want)
			}
			spec, diags = Parse("dyno.hcl", []byte(configSpec(c.value(n+1))))
			if spec != nil || !strings.Contains(FormatDiagnostics(diags), "Nesting too deep") {
				t.Errorf("one level over the limit: %s, want refused as too deep", FormatDiagnostics(diags))
			}
		})
	}
}

// TestNewlinesEndValuesInBlocksAndObjects: a newline ends a value in a block or an
// object, so operators on separate lines there do not add up.
func TestNewlinesEndValuesInBlocksAndObjects(t *testing.T) {
	t.Parallel()
	object := "{\n" + repeat(100, func(i int) string { return fmt.Sprintf("x%d = -1\n", i) }) + "}.x99"
	s, diags := Parse("dyno.hcl", []byte(configSpec(object)))
	if diags.HasErrors() || s.Config["A"] != "-1" {
		t.Errorf("an object of 100 values of -1: %s, want accepted", FormatDiagnostics(diags))
	}
	body := "  config {\n" + repeat(200, func(i int) string { return fmt.Sprintf("    V%d = -1\n", i) }) + "  }\n"
	s, diags = Parse("dyno.hcl", []byte(spec(body)))
	if diags.HasErrors() || len(s.Config) != 200 || s.Config["V199"] != "-1" {
		t.Errorf("200 config vars of -1: %s, want all accepted", FormatDiagnostics(diags))
	}
}
