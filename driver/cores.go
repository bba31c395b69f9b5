package driver

import (
	"sync"

	"github.com/hashicorp/nomad/lib/cpuset"
	"github.com/hashicorp/nomad/plugins/drivers"
)

// coreBook holds the cores of the dynos being started, which are not in the task store
// yet, so that dynos started side by side spread over the cores too.
type coreBook struct {
	mu       sync.Mutex
	starting map[string]booking // by task ID
}

type booking struct {
	cpus   string
	weight int
}

// bindCores picks the dyno's cores (dynoCpuset) from the load of the running dynos and
// of those being started, and books them until done is called: once the dyno is in the
// task store, or did not start.
func (d *Driver) bindCores(cfg *drivers.TaskConfig) (cpus string, done func(), err error) {
	d.cores.mu.Lock()
	defer d.cores.mu.Unlock()
	load := d.tasks.coreLoad()
	for _, b := range d.cores.starting {
		addLoad(load, b.cpus, b.weight)
	}
	if cpus, err = dynoCpuset(cfg.Resources, cfg.AllocID, load); err != nil {
		return "", nil, err
	}
	if d.cores.starting == nil {
		d.cores.starting = map[string]booking{}
	}
	d.cores.starting[cfg.ID] = booking{cpus, weightOf(cfg.Resources)}
	return cpus, func() {
		d.cores.mu.Lock()
		defer d.cores.mu.Unlock()
		delete(d.cores.starting, cfg.ID)
	}, nil
}

// coreLoad counts the running dynos on each core: a shared dyno for 1, one with a
// reserved core for dedicatedWeight.
func (ts *taskStore) coreLoad() map[int]int {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	load := map[int]int{}
	for _, h := range ts.store {
		if h.state.TaskConfig != nil {
			addLoad(load, h.state.Cpuset, weightOf(h.state.TaskConfig.Resources))
		}
	}
	return load
}

// weightOf is what a dyno counts for on its cores.
func weightOf(res *drivers.Resources) int {
	if _, ok, _ := reservedCores(res); ok {
		return dedicatedWeight
	}
	return 1
}

func addLoad(load map[int]int, set string, w int) {
	s, err := cpuset.Parse(set)
	if err != nil {
		return
	}
	for _, c := range s.ToSlice() {
		load[int(c)] += w
	}
}
