package driver

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/nomad/structs"
	"github.com/hashicorp/nomad/plugins/drivers"
)

func TestDynoPortsAreDynamicPortsOnly(t *testing.T) {
	d := &Driver{config: defaultConfig}
	task := func(ports ...structs.AllocatedPortMapping) *drivers.TaskConfig {
		all := structs.AllocatedPorts(ports)
		return &drivers.TaskConfig{Resources: &drivers.Resources{Ports: &all}}
	}
	got, err := d.dynoPorts(task(structs.AllocatedPortMapping{Label: "http", Value: 23456, To: -1, HostIP: "127.0.0.1"},
		structs.AllocatedPortMapping{Label: "other", Value: 20000, To: 8080}))
	if err != nil || len(got) != 2 || got[0].DynoPort != 23456 || got[0].HostIP != "127.0.0.1" || got[1].DynoPort != 8080 {
		t.Errorf("dynoPorts of two dynamic ports = %+v, %v", got, err)
	}
	for _, static := range []int{4646, 8500, 80, 19999, 32001} {
		_, err := d.dynoPorts(task(structs.AllocatedPortMapping{Label: "http", Value: static, To: -1}))
		if err == nil || !strings.Contains(err.Error(), "outside the dynamic ports 20000-32000") {
			t.Errorf("host port %d: dynoPorts = %v, want it refused", static, err)
		}
	}
	var many []structs.AllocatedPortMapping
	for i := range maxDynoPorts + 1 {
		many = append(many, structs.AllocatedPortMapping{Label: "p", Value: 20000 + i})
	}
	if _, err := d.dynoPorts(task(many...)); err == nil || !strings.Contains(err.Error(), "at most 8") {
		t.Errorf("%d ports: dynoPorts = %v, want it refused", len(many), err)
	}
	if got, err := d.dynoPorts(&drivers.TaskConfig{}); err != nil || got != nil {
		t.Errorf("no resources: dynoPorts = %v, %v", got, err)
	}
}

// A task of an allocation taken off the bridge while another task of it is being put on
// (started, not in the task store yet) leaves the allocation's network to that task;
// once that task is stored or failed, the last one to go takes it.
func TestDetachWaitsForATaskOfTheAllocationBeingStarted(t *testing.T) {
	store := t.TempDir()
	d := &Driver{config: defaultConfig, tasks: newTaskStore(), netStore: store}
	alloc := "aaaaaaaa-0000-4000-8000-000000000001"
	reservation := filepath.Join(store, "10.9.0.2")
	if err := os.WriteFile(reservation, []byte(alloc+"\r\neth0"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.attachMu.Lock()
	done := d.attachingLocked(alloc)
	d.attachMu.Unlock()
	if err := d.detachNetwork(alloc); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(reservation); err != nil {
		t.Errorf("a task's end took the address of the allocation's task being started: %v", err)
	}
	done()
	if err := d.detachNetwork(alloc); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(reservation); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the allocation's last task's end left its address: %v", err)
	}
}
