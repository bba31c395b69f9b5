package buildpacks

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestTablesSayWhatTheScriptsDo runs each built-in buildpack's bin/detect and bin/release
// from the repository: Detects and DefaultProcessTypes must say what they do.
func TestTablesSayWhatTheScriptsDo(t *testing.T) {
	for _, name := range BuiltIn {
		dir := t.TempDir()
		bin := filepath.Join(name, "bin")
		if err := exec.Command(filepath.Join(bin, "detect"), dir).Run(); err == nil {
			t.Errorf("%s detects an empty source", name)
		}
		if err := os.WriteFile(filepath.Join(dir, Detects[name]), []byte("{}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(filepath.Join(bin, "detect"), dir).CombinedOutput(); err != nil {
			t.Errorf("%s does not detect a source with a %s: %v %s", name, Detects[name], err, out)
		}
		if name == "ruby" {
			if _, err := exec.LookPath("ruby"); err != nil {
				t.Log("no ruby here: the ruby buildpack's bin/release is not checked")
				continue
			}
		}
		out, err := exec.Command(filepath.Join(bin, "release"), dir).Output()
		if err != nil {
			t.Fatalf("%s bin/release: %v", name, err)
		}
		var r struct {
			DefaultProcessTypes map[string]string `yaml:"default_process_types"`
		}
		if err := yaml.Unmarshal(out, &r); err != nil {
			t.Fatalf("%s bin/release: %v", name, err)
		}
		if len(r.DefaultProcessTypes) != len(DefaultProcessTypes[name]) {
			t.Errorf("%s bin/release gives %v, DefaultProcessTypes says %v", name, r.DefaultProcessTypes, DefaultProcessTypes[name])
		}
		for k, v := range r.DefaultProcessTypes {
			if DefaultProcessTypes[name][k] != v {
				t.Errorf("%s bin/release gives %s: %q, DefaultProcessTypes says %q", name, k, v, DefaultProcessTypes[name][k])
			}
		}
	}
}
