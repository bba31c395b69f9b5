// Command testaddon is a misbehaving add-on for the host's tests. It speaks the raw gRPC
// protocol (not the SDK, which would refuse to send bad answers) and behaves after the
// name it is run under: dyno-addon-<mode>.
//
//	good        valid answers, resources kept in <state_dir>/resources keyed by request ID
//	garbage     prints nonsense (with a terminal escape) instead of a handshake
//	wrongproto  completes a handshake for protocol version 99
//	slowstart   never completes a handshake
//	hang        Provision never answers
//	crash       Provision prints to stderr (with terminal escapes) and exits with status 3
//	loud        Provision fails with a 3 MB message full of terminal escapes
//	killme      Provision writes its PID to <state_dir>/pid and waits to be killed
//	badname     Provision answers a lowercase variable name
//	undeclared  Provision answers a variable it did not declare
//	newline     Provision answers a value with a line break
//	empty       Provision answers nothing at all
//	baddescribe Describe answers no name and no plans
//	impostor    Describe answers another add-on's name
//	refuse      Configure fails naming a missing setting
//	forker      Provision leaves a child holding stderr, PID in <state_dir>/child
//	env         Provision answers the host environment it sees in TEST_TOKEN
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dynogrid/dynogrid/plugins/addon"
	addonv1 "github.com/dynogrid/dynogrid/plugins/addon/proto/addon/v1"
)

// loudMessage writes the clipboard (OSC 52), clears the screen and forges a line of its
// own, then goes on for 3 MB.
var loudMessage = "\x1b]52;c;ZXZpbA==\a\x1b[2J\r\nfake: Error: line" + strings.Repeat("x", 3<<20)

// stderr is the process's real standard error: plugin.Serve later redirects os.Stderr
// through gRPC, which a crashing process may not flush.
var stderr = os.Stderr

func main() {
	mode := strings.TrimPrefix(filepath.Base(os.Args[0]), addon.BinaryPrefix)
	hs := addon.Handshake
	switch mode {
	case "garbage":
		if os.Getenv(hs.MagicCookieKey) == hs.MagicCookieValue {
			fmt.Println("hello, I am not a plugin\x1b[2J")
		}
		os.Exit(0)
	case "slowstart":
		time.Sleep(time.Hour)
	case "wrongproto":
		hs.ProtocolVersion = 99
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  hs,
		VersionedPlugins: map[int]plugin.PluginSet{int(hs.ProtocolVersion): {addon.PluginName: &rawPlugin{srv: &server{mode: mode}}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}

type rawPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv *server
}

func (p *rawPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	addonv1.RegisterAddonServer(s, p.srv)
	return nil
}

func (p *rawPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (interface{}, error) {
	return nil, fmt.Errorf("server only")
}

type server struct {
	addonv1.UnimplementedAddonServer
	mode     string
	stateDir string
}

func (s *server) Configure(_ context.Context, req *addonv1.ConfigureRequest) (*addonv1.ConfigureResponse, error) {
	if s.mode == "refuse" {
		return nil, fmt.Errorf("setting %q is required", "admin_url")
	}
	s.stateDir = req.GetStateDir()
	return &addonv1.ConfigureResponse{}, nil
}

func (s *server) Describe(context.Context, *addonv1.DescribeRequest) (*addonv1.DescribeResponse, error) {
	switch s.mode {
	case "baddescribe":
		return &addonv1.DescribeResponse{}, nil
	case "impostor":
		return &addonv1.DescribeResponse{Name: "postgres", Plans: []*addonv1.Plan{{Name: "dev"}}, EnvVars: []string{"DATABASE_URL"}}, nil
	}
	return &addonv1.DescribeResponse{
		Name: s.mode, Version: "0.0.1", Summary: "test add-on",
		Plans: []*addonv1.Plan{{Name: "small"}, {Name: "large"}}, DefaultPlan: "small",
		EnvVars: []string{"TEST_URL", "TEST_TOKEN"},
	}, nil
}

func (s *server) Provision(ctx context.Context, req *addonv1.ProvisionRequest) (*addonv1.ProvisionResponse, error) {
	good := map[string]string{"TEST_URL": "test://" + req.GetApp() + "/" + req.GetPlan(), "TEST_TOKEN": "t-" + req.GetRequestId()}
	switch s.mode {
	case "hang":
		select {}
	case "crash":
		fmt.Fprintln(stderr, "boom: out of cheese\x1b]52;c;ZXZpbA==\a\x1b[2J")
		os.Exit(3)
	case "loud":
		return nil, status.Error(codes.Unknown, loudMessage)
	case "killme":
		if err := os.WriteFile(filepath.Join(s.stateDir, "pid"), []byte(fmt.Sprint(os.Getpid())), 0o600); err != nil {
			return nil, err
		}
		select {}
	case "badname":
		return &addonv1.ProvisionResponse{ResourceId: "r1", Env: map[string]string{"test_url": "x", "TEST_TOKEN": "y"}}, nil
	case "undeclared":
		good["LD_PRELOAD"] = "/tmp/evil.so"
		return &addonv1.ProvisionResponse{ResourceId: "r1", Env: good}, nil
	case "newline":
		good["TEST_TOKEN"] = "a\nEVIL=1"
		return &addonv1.ProvisionResponse{ResourceId: "r1", Env: good}, nil
	case "empty":
		return &addonv1.ProvisionResponse{}, nil
	case "env":
		var names []string
		for _, kv := range os.Environ() {
			if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "PLUGIN_") && k != addon.Handshake.MagicCookieKey {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		good["TEST_TOKEN"] = strings.Join(names, ",")
		return &addonv1.ProvisionResponse{ResourceId: "r1", Env: good}, nil
	case "forker":
		child := exec.Command("sleep", "3600")
		child.Stderr = stderr
		if err := child.Start(); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(s.stateDir, "child"), []byte(fmt.Sprint(child.Process.Pid)), 0o600); err != nil {
			return nil, err
		}
		return &addonv1.ProvisionResponse{ResourceId: "r1", Env: good}, nil
	}
	// good: one resource per request ID, remembered in the state directory.
	id := "res-" + req.GetRequestId()
	marker := filepath.Join(s.stateDir, id)
	if _, err := os.Stat(marker); err != nil {
		if err := os.WriteFile(marker, []byte(req.GetApp()), 0o600); err != nil {
			return nil, err
		}
	}
	return &addonv1.ProvisionResponse{ResourceId: id, Env: good, Message: "made " + id}, nil
}

func (s *server) Deprovision(_ context.Context, req *addonv1.DeprovisionRequest) (*addonv1.DeprovisionResponse, error) {
	err := os.Remove(filepath.Join(s.stateDir, req.GetResourceId()))
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	return &addonv1.DeprovisionResponse{}, nil
}
