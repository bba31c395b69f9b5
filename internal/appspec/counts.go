package appspec

import "github.com/hashicorp/hcl/v2"

// resolveCounts reads a process type's count, min and max into p. Min and max default
// to 0 and MaxCount. A count the block leaves out (web 1, other types 0) is brought
// within min and max; a count it gives must lie within them.
func resolveCounts(pb processBlock, p *Process, add func(hcl.Range, string, string, ...any)) {
	ok := true
	read := func(v *int, rng hcl.Range, attr, summary string, into *int) {
		if v == nil {
			return
		}
		if *v < 0 || *v > MaxCount {
			add(rng, summary, "%s must be from 0 to %d; %d is not.", attr, MaxCount, *v)
			ok = false
		}
		*into = *v
	}
	read(pb.Count, pb.CountRange, "count", "Count out of range", &p.Count)
	read(pb.Min, pb.MinRange, "min", "Min out of range", &p.Min)
	read(pb.Max, pb.MaxRange, "max", "Max out of range", &p.Max)
	if !ok {
		return
	}
	if p.Min > p.Max {
		add(pb.MinRange, "Min above max", "min is the fewest dynos process type %s may be scaled to and max the most; min %d is above max %d.", short(pb.Name), p.Min, p.Max)
		return
	}
	if pb.Count == nil {
		p.Count = min(max(p.Count, p.Min), p.Max)
		return
	}
	if p.Count < p.Min || p.Count > p.Max {
		add(pb.CountRange, "Count outside min and max", "count must be from min to max, %d to %d here; %d is not.", p.Min, p.Max, p.Count)
	}
}
