package e2e

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
)

// TestStaticHostPortAttack registers, with an app's own deploy token, jobs whose dyno
// asks for a static host port on which a listener stands for an agent's API: in the
// driver's network mode (none) the driver's DNAT rule, and in Nomad's bridge mode the
// CNI portmap plugin (before the driver could refuse the task), would take the host's
// connections to that port into the job's network. The clients reserve every host port
// but the dynamic ones, so Nomad places neither job, and the host's connections still
// reach the listener. A client without that reservation still has the driver refuse a
// dyno of mode none (driver TestDynoPortsAreDynamicPortsOnly).
func TestStaticHostPortAttack(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t)
	const app = "grabber"
	n := tenantNomad(t, g, app)

	agent, err := net.Listen("tcp4", g.Options.Bind+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Close() })
	go func() {
		for {
			c, err := agent.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "agent\n")
			c.Close()
		}
	}()
	port := agent.Addr().(*net.TCPAddr).Port

	for _, mode := range []string{"none", "bridge"} {
		grab := nomadapi.NewTaskGroup("grab", 1)
		grab.Networks = []*nomadapi.NetworkResource{{Mode: mode, ReservedPorts: []nomadapi.Port{{Label: "http", Value: port, To: -1}}}}
		why := unplacedDyno(t, n, app+"-grab-"+mode, grab)
		if want := fmt.Sprintf("reserved port collision http=%d", port); !strings.Contains(why, want) {
			t.Errorf("mode %s: the job was not placed because %q, want %q", mode, why, want)
		}
	}
	c, err := net.DialTimeout("tcp", agent.Addr().String(), 3*time.Second)
	if err != nil {
		t.Fatalf("the host cannot reach its listener on port %d any more: %v", port, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if b, err := io.ReadAll(c); err != nil || string(b) != "agent\n" {
		t.Errorf("the host's connection to port %d got %q, %v; want the listener's greeting", port, b, err)
	}
}

// TestHostNetworkAttack registers, with an app's own deploy token, a job whose task group
// has no network block: its dyno would share the host's network, where the firewall does
// not apply and the host's loopback services are its own. The driver refuses it.
func TestHostNetworkAttack(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t)
	const app = "sharer"
	n := tenantNomad(t, g, app)
	failure := refusedDyno(t, n, app+"-host", nomadapi.NewTaskGroup("host", 1), nil)
	if want := `network: the dyno's task group shares the host's network`; !strings.Contains(failure, want) {
		t.Errorf("the dyno failed with %q, want it to say %q", failure, want)
	}
}
