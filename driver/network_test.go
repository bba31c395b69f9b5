package driver

import (
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
