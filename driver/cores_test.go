package driver

import (
	"testing"

	"github.com/hashicorp/nomad/nomad/structs"
	"github.com/hashicorp/nomad/plugins/drivers"
)

func TestDynoCpusetPicksTheLeastLoadedCore(t *testing.T) {
	online, err := onlineCPUs()
	if err != nil {
		t.Fatal(err)
	}
	if online.Size() < 2 {
		t.Skip("needs two cores")
	}
	cores := online.ToSlice()
	a, b := int(cores[0]), int(cores[1])
	for _, tc := range []struct {
		name string
		load map[int]int
		want int
	}{
		{"fewer shared dynos", map[int]int{a: 3, b: 1}, b},
		{"the other way", map[int]int{a: 0, b: 2}, a},
		{"away from a dedicated dyno", map[int]int{a: dedicatedWeight, b: 5}, b},
	} {
		for _, rest := range cores[2:] {
			tc.load[int(rest)] = 1 << 20
		}
		got, err := dynoCpuset(nil, "6b1c4f3e-0000-0000-0000-000000000000", tc.load)
		if err != nil || got != itoa(tc.want) {
			t.Errorf("%s: dynoCpuset = %q, %v; want %d", tc.name, got, err, tc.want)
		}
	}

	// Equal load: the allocation ID decides, the same way every time.
	first, _ := dynoCpuset(nil, "alloc-x", map[int]int{})
	for range 5 {
		if again, _ := dynoCpuset(nil, "alloc-x", map[int]int{}); again != first {
			t.Fatalf("dynoCpuset of one allocation gave %q, then %q", first, again)
		}
	}

	// A reserved core is the dyno's whatever the load.
	res := &drivers.Resources{NomadResources: &structs.AllocatedTaskResources{Cpu: structs.AllocatedCpuResources{ReservedCores: []uint16{uint16(a)}}}}
	if got, err := dynoCpuset(res, "x", map[int]int{a: 99}); err != nil || got != itoa(a) {
		t.Errorf("reserved core %d: dynoCpuset = %q, %v", a, got, err)
	}
}

// Dynos started side by side, before any is in the task store, go to different cores.
func TestBindCoresSpreadsDynosBeingStarted(t *testing.T) {
	online, err := onlineCPUs()
	if err != nil {
		t.Fatal(err)
	}
	d := &Driver{tasks: newTaskStore()}
	seen := map[string]int{}
	var dones []func()
	for i := range 2 * online.Size() {
		cfg := &drivers.TaskConfig{ID: itoa(i), AllocID: "alloc-" + itoa(i)}
		cpus, done, err := d.bindCores(cfg)
		if err != nil {
			t.Fatal(err)
		}
		seen[cpus]++
		dones = append(dones, done)
	}
	for _, c := range online.ToSlice() {
		if seen[itoa(int(c))] != 2 {
			t.Errorf("%d dynos started on %d cores: %v, want 2 on each", 2*online.Size(), online.Size(), seen)
		}
	}
	for _, done := range dones {
		done()
	}
	if n := len(d.cores.starting); n != 0 {
		t.Errorf("%d bookings left after every dyno was tracked", n)
	}
}
