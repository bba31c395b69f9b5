package e2e

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynogrid/dynogrid/e2e/harness"
)

// TestBuildDynoAttacks builds an app whose buildpack attacks the grid from inside its
// build dyno, which may reach the Internet, after another app's build left a secret in
// its build cache. The build cannot connect to the Nomad and Consul agents (on
// loopback, on the bridge's gateway, on a host address), has no token of theirs in its
// environment or its Nomad directories, cannot read the other app's build cache (by its
// host path, or anywhere it can read), and cannot write outside its own /app/tmp and
// /app/log: not in /app, /usr, /etc, Nomad's directories, nor in the host's slug
// store, build caches or slug cache, where nothing appears.
func TestBuildDynoAttacks(t *testing.T) {
	g := harness.Grid(t)
	o := g.Options
	if o.Network == nil {
		t.Fatal("the grid made no dyno network")
	}
	_, _, hostSide := internetHost(t)
	store := o.SlugStore()
	caches := filepath.Join(store, "build-cache")
	victimCache := filepath.Join(caches, "victim.tar.gz")
	const secret = "victim-build-cache-secret-5e3a"

	// The victim's build leaves the secret in its build cache.
	worker := "  process \"worker\" {\n    command = \"sleep 600\"\n    count   = 0\n  }\n"
	cachepack := writeBuildpack(t, "cachepack", "#!/bin/sh\necho Cache\n", "#!/bin/sh\necho "+secret+" > \"$2/secret\"\n")
	victim := t.TempDir()
	writeSpec(t, victim, fmt.Sprintf("app \"victim\" {\n  buildpacks = [%q]\n%s}\n", cachepack, worker))
	newCLI(t, g, "victim").must("deploy", victim)
	before, err := os.ReadFile(victimCache)
	if err != nil {
		t.Fatalf("the victim's build left no build cache: %v", err)
	}

	targets := []string{}
	for name, port := range map[string]int{"nomad-http": o.NomadPort, "nomad-rpc": o.NomadPort + 1, "consul-http": o.ConsulPort, "consul-server": o.ConsulPort + 3} {
		for where, addr := range map[string]string{"loopback": "127.0.0.1", "gateway": o.Network.Gateway, "host-addr": hostSide} {
			targets = append(targets, fmt.Sprintf("%s-via-%s=%s:%d", name, where, addr, port))
		}
	}
	// Stand-ins for agents bound to the host's addresses (the grid's bind to loopback).
	targets = append(targets, "agent-on-gateway="+listen(t, o.Network.Gateway+":0"), "agent-on-host-addr="+listen(t, hostSide+":0"))
	// Controls: what the build dyno may read and write, which the probes must see.
	allowedReads, allowedWrites := []string{"/app/buildpacks/order"}, []string{"/app/tmp", "/app/log"}
	reads := []string{victimCache, caches, store}
	hostDirs := []string{store, caches, filepath.Join(o.DataDir, "slugs"), o.DataDir}
	writes := append([]string{"/", "/app", "/app/buildpacks", "/usr", "/usr/local", "/etc", "/var", "/alloc", "/local", "/secrets", "/dev"}, hostDirs...)

	compile, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), "e2e", "testdata", "buildattack.sh"))
	if err != nil {
		t.Fatal(err)
	}
	attackpack := writeBuildpack(t, "attackpack", "#!/bin/sh\necho Attack\n", string(compile))
	attacker := t.TempDir()
	writeSpec(t, attacker, fmt.Sprintf(`app "attacker" {
  buildpacks = [%q]
%s  config {
    PROBE_TARGETS = %q
    PROBE_READ    = %q
    PROBE_WRITE   = %q
    PROBE_SECRET_A = %q
    PROBE_SECRET_B = %q
  }
}
`, attackpack, worker, strings.Join(targets, " "), strings.Join(append(reads, allowedReads...), " "), strings.Join(append(writes, allowedWrites...), " "), secret[:10], secret[10:]))
	out := newCLI(t, g, "attacker").must("deploy", attacker)
	t.Logf("the attacking build said:\n%s", out)
	lines := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, tgt := range targets {
		name := strings.SplitN(tgt, "=", 2)[0]
		if !lines["net "+name+" closed"] {
			t.Errorf("the build dyno connected to %s; the firewall must stop it", tgt)
		}
	}
	// Each probe prints "<op> <path> <result>"; the controls must succeed.
	for _, probe := range []struct {
		op, result, says string
		paths            []string
	}{
		{"read", "refused", "the build dyno read %s", reads},
		{"write", "refused", "the build dyno wrote into %s", writes},
		{"read", "ok", "control: the build dyno could not read %s", allowedReads},
		{"write", "ok", "control: the build dyno could not write into %s", allowedWrites},
	} {
		for _, p := range probe.paths {
			if !lines[probe.op+" "+p+" "+probe.result] {
				t.Errorf(probe.says, p)
			}
		}
	}
	if !lines["secret not found"] {
		t.Errorf("the build dyno found the victim's build cache secret")
	}
	if !lines["tokens none"] {
		t.Errorf("the build dyno found a token in its environment or its Nomad directories")
	}
	// What the build wrote did not land on the host, and the victim's cache is as it was.
	for _, d := range hostDirs {
		entries, _ := filepath.Glob(filepath.Join(d, "attack-*"))
		if len(entries) > 0 {
			t.Errorf("the build dyno's files landed on the host: %v", entries)
		}
	}
	after, err := os.ReadFile(victimCache)
	if err != nil || sha256.Sum256(after) != sha256.Sum256(before) {
		t.Errorf("the victim's build cache changed during the attacker's build (%v)", err)
	}
}
