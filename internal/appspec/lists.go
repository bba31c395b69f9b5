package appspec

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// stringList describes a list attribute of strings of the spec (domains, buildpacks),
// which is read element by element so that each diagnostic points at its element.
type stringList struct {
	// Name is the attribute's name; a diagnostic about the whole list says "Invalid
	// <Name>" or "Too many <Name>".
	Name string
	// Example is the detail of "Invalid <Name>": what the list looks like.
	Example string
	// Max bounds the list's length; TooMany is the detail of going over it.
	Max     int
	TooMany string
	// ElemSummary is the summary of a diagnostic about one element ("Invalid domain");
	// NotString the detail for element i (from 1) that is no string.
	ElemSummary string
	NotString   func(i int) string
}

// listElem is one string of a list, with its place.
type listElem struct {
	Value string
	Range hcl.Range
	// Index is the element's place in the list, from 1.
	Index int
}

// read returns the list's strings; an element that is none gets a diagnostic and is
// left out. An absent or null list is empty.
func (l stringList) read(expr hcl.Expression, diags *hcl.Diagnostics) []listElem {
	add := func(rng hcl.Range, summary, detail string) {
		*diags = append(*diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng.Ptr()})
	}
	if expr == nil {
		return nil
	}
	if v, vd := expr.Value(nil); !vd.HasErrors() && v.IsNull() {
		return nil
	}
	elems, ld := hcl.ExprList(expr)
	if ld.HasErrors() {
		add(expr.Range(), "Invalid "+l.Name, l.Example)
		return nil
	}
	if len(elems) > l.Max {
		add(elems[l.Max].Range(), fmt.Sprintf("Too many %s (%d; the limit is %d)", l.Name, len(elems), l.Max), l.TooMany)
		return nil
	}
	var out []listElem
	for i, e := range elems {
		v, vd := e.Value(nil)
		if vd.HasErrors() {
			*diags = append(*diags, vd...)
			continue
		}
		s, err := convert.Convert(v, cty.String)
		if err != nil || s.IsNull() || !s.IsKnown() {
			add(e.Range(), l.ElemSummary, l.NotString(i+1))
			continue
		}
		out = append(out, listElem{Value: s.AsString(), Range: e.Range(), Index: i + 1})
	}
	return out
}
