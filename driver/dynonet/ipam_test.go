package dynonet

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReserveGivesEachAllocationItsOwnAddress(t *testing.T) {
	dir := t.TempDir()
	gw := netip.MustParsePrefix("10.9.0.1/29") // .2 to .6 for dynos
	got := map[netip.Addr]string{}
	for _, id := range []string{"a1", "a2", "a3", "a4", "a5"} {
		a, err := reserve(dir, gw, id)
		if err != nil {
			t.Fatalf("reserve %s: %v", id, err)
		}
		if a == gw.Addr() || !gw.Masked().Contains(a) || a == netip.MustParseAddr("10.9.0.0") || a == netip.MustParseAddr("10.9.0.7") {
			t.Errorf("reserve %s = %s: not a host address of %s other than the gateway", id, a, gw)
		}
		if other, dup := got[a]; dup {
			t.Errorf("%s given to %s and %s", a, other, id)
		}
		got[a] = id
		b, _ := os.ReadFile(filepath.Join(dir, a.String()))
		if string(b) != id+"\r\neth0" {
			t.Errorf("reservation of %s = %q, want the host-local plugin's form", a, b)
		}
		if back, err := Addr(dir, id); err != nil || back != a {
			t.Errorf("Addr(%s) = %s, %v; want %s", id, back, err, a)
		}
	}
	// Round the subnet from the address reserved last: a1 to a5 took .2 to .6 in turn.
	for want, id := range map[string]string{"10.9.0.2": "a1", "10.9.0.6": "a5"} {
		if got[netip.MustParseAddr(want)] != id {
			t.Errorf("%s went to %q, want %s: addresses are given round the subnet (%v)", want, got[netip.MustParseAddr(want)], id, got)
		}
	}
	if a, err := reserve(dir, gw, "a6"); err == nil || !strings.Contains(err.Error(), "no free address for a dyno in 10.9.0.0/29") {
		t.Errorf("a full subnet: reserve = %s, %v", a, err)
	}

	// The addresses of an allocation whose namespace is gone are taken back when the
	// subnet is full, once old enough.
	var a3 netip.Addr
	for a, id := range got {
		if id == "a3" {
			a3 = a
		}
	}
	gone := "00000000-dead-0000-0000-" + time.Now().Format("150405000000")
	p := filepath.Join(dir, a3.String())
	if err := os.WriteFile(p, []byte(gone+"\r\neth0"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := reserve(dir, gw, "a6"); err == nil {
		t.Error("a reservation made a moment ago was taken back")
	}
	old := time.Now().Add(-2 * staleAfter)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	if a, err := reserve(dir, gw, "a6"); err != nil || a != a3 {
		t.Errorf("reserve with a stale reservation of %s = %s, %v", a3, a, err)
	}

	if err := release(dir, "a1"); err != nil {
		t.Fatal(err)
	}
	if _, err := Addr(dir, "a1"); err == nil {
		t.Error("a1 still has an address after release")
	}
	if _, err := Addr(dir, "a2"); err != nil {
		t.Errorf("releasing a1 released a2: %v", err)
	}

	// An address given up is given again only after every other.
	fresh := t.TempDir()
	gw24 := netip.MustParsePrefix("10.9.1.1/24")
	first, _ := reserve(fresh, gw24, "b1")
	if err := release(fresh, "b1"); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		a, err := reserve(fresh, gw24, fmt.Sprintf("c%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if a == first {
			t.Fatalf("%s, just given up, was given again after %d others", first, i)
		}
	}
}

func TestHostAddresses(t *testing.T) {
	for _, tc := range []struct {
		gw    string
		count uint32
		first string
	}{
		{"172.26.64.1/20", 4094, "172.26.64.1"},
		{"10.0.0.1/30", 2, "10.0.0.1"},
		{"10.0.0.1/8", maxHosts, "10.0.0.1"},
		{"10.0.0.1/31", 0, ""},
	} {
		gw := netip.MustParsePrefix(tc.gw)
		if n := hostCount(gw); n != tc.count {
			t.Errorf("hostCount(%s) = %d, want %d", tc.gw, n, tc.count)
		}
		if tc.count > 0 {
			if a := hostAddr(gw, 0); a.String() != tc.first {
				t.Errorf("hostAddr(%s, 0) = %s", tc.gw, a)
			}
			if last := hostAddr(gw, tc.count-1); !gw.Masked().Contains(last) {
				t.Errorf("hostAddr(%s, last) = %s, outside the subnet", tc.gw, last)
			}
		}
	}
	if last := hostAddr(netip.MustParsePrefix("10.9.0.1/24"), 253); last.String() != "10.9.0.254" {
		t.Errorf("last host address of a /24 = %s, want 10.9.0.254", last)
	}
}

func TestPortRulesOfAnAllocation(t *testing.T) {
	listing := `-N DYNO-PORTS-br0
-A DYNO-PORTS-br0 -d 127.0.0.1/32 -p tcp -m tcp --dport 23000 -m comment --comment "dyno a-1" -j DNAT --to-destination 10.9.0.2:23000
-A DYNO-PORTS-br0 -p tcp -m tcp --dport 23001 -m comment --comment "dyno b-2" -j DNAT --to-destination 10.9.0.3:23001
-A DYNO-PORTS-br00 -p tcp -m tcp --dport 23002 -m comment --comment "dyno a-1" -j DNAT --to-destination 10.9.0.4:23002
`
	got := rulesOf(listing, "DYNO-PORTS-br0", func(r string) bool { return strings.Contains(r, `"dyno a-1"`) })
	if len(got) != 1 || dport(got[0]) != 23000 {
		t.Errorf("rules of a-1 in DYNO-PORTS-br0 = %q", got)
	}
	if p := dport("-A X -j ACCEPT"); p != 0 {
		t.Errorf("dport of a rule without one = %d", p)
	}
}

// An allocation's port rules are replaced, and so are others' rules of the same host
// port on the same address (left from an allocation the driver could not detach); a
// rule of the same port on another of the host's addresses is another allocation's,
// which Nomad gave that port on that address, and stays.
func TestPortRulesReplacedByAnAllocation(t *testing.T) {
	listing := `-N DYNO-PORTS-br0
-A DYNO-PORTS-br0 -d 10.0.0.5/32 -p tcp -m tcp --dport 23000 -m comment --comment "dyno a-1" -j DNAT --to-destination 10.9.0.2:8080
-A DYNO-PORTS-br0 -d 10.0.0.6/32 -p tcp -m tcp --dport 23001 -m comment --comment "dyno b-2" -j DNAT --to-destination 10.9.0.3:8080
-A DYNO-PORTS-br0 -d 10.0.0.5/32 -p tcp -m tcp --dport 23001 -m comment --comment "dyno c-3" -j DNAT --to-destination 10.9.0.4:8080
-A DYNO-PORTS-br0 -p tcp -m tcp --dport 23002 -m comment --comment "dyno d-4" -j DNAT --to-destination 10.9.0.5:8080
`
	ports := []Port{{HostIP: "10.0.0.5", HostPort: 23001, DynoPort: 8080}, {HostIP: "10.0.0.5", HostPort: 23002, DynoPort: 8080}}
	got := replacedRules(listing, "DYNO-PORTS-br0", "a-1", ports)
	var owners []string
	for _, r := range got {
		owners = append(owners, r[strings.Index(r, "dyno "):strings.Index(r, " -j")])
	}
	want := []string{`dyno a-1"`, `dyno c-3"`, `dyno d-4"`}
	if strings.Join(owners, ",") != strings.Join(want, ",") {
		t.Errorf("rules replaced = %q, want those of %q", got, want)
	}
}

// The port rules of allocations whose network namespace is gone (their driver was
// killed, or the Nomad client removed them while it was down) are found by Install.
func TestOrphanPortRules(t *testing.T) {
	listing := `-N DYNO-PORTS-br0
-A DYNO-PORTS-br0 -d 10.0.0.5/32 -p tcp -m tcp --dport 23000 -m comment --comment "dyno a-1" -j DNAT --to-destination 10.9.0.2:8080
-A DYNO-PORTS-br0 -d 10.0.0.5/32 -p tcp -m tcp --dport 23001 -m comment --comment "dyno b-2" -j DNAT --to-destination 10.9.0.3:8080
-A DYNO-PORTS-br0 -d 10.0.0.5/32 -p tcp -m tcp --dport 23002 -m comment --comment "dyno b-2" -j DNAT --to-destination 10.9.0.3:8081
-A DYNO-PORTS-br0 -p tcp -m tcp --dport 23003 -j DNAT --to-destination 10.9.0.4:8080
`
	got := orphanRules(listing, "DYNO-PORTS-br0", func(id string) bool { return id == "a-1" })
	if len(got) != 2 || dport(got[0]) != 23001 || dport(got[1]) != 23002 {
		t.Errorf("orphan rules = %q, want b-2's two", got)
	}
}
