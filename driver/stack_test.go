package driver

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/shoenig/test/must"
)

func TestReadStackNamesTheOSRelease(t *testing.T) {
	dir := t.TempDir()
	osRelease := filepath.Join(dir, "os-release")
	debian := filepath.Join(dir, "debian_version")
	must.NoError(t, os.WriteFile(osRelease, []byte("NAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"12\"\n"), 0o644))
	must.NoError(t, os.WriteFile(debian, []byte("12.11\n"), 0o644))
	s := readStack(osRelease, debian)
	must.Eq(t, "debian-12", s.Name)
	must.Eq(t, "12.11", s.Version)

	// Without an os-release the stack is "unknown", never an empty attribute.
	s = readStack(filepath.Join(dir, "none"), filepath.Join(dir, "none"))
	must.Eq(t, "unknown", s.Name)
	must.MapContainsKey(t, s.attributes(), "driver.dyno.stack")
}

func TestHostStackHasItsRuntimes(t *testing.T) {
	s := readHostStack()
	if _, err := os.Stat("/usr/bin/ruby"); err == nil {
		must.NotEq(t, "", s.Ruby)
		must.Eq(t, s.Ruby, *s.attributes()["driver.dyno.stack.ruby"].String)
	}
}
