package sandbox

import (
	"testing"

	"github.com/shoenig/test/must"
)

// TestScratch_Validate refuses writable folders that would not be bounded or private:
// tmpfs takes size=0 as no bound at all.
func TestScratch_Validate(t *testing.T) {
	good := Scratch{Dirs: []string{"/app/tmp", "/app/log"}, UID: 65534, GID: 65534, SizeBytes: 64 << 20}
	must.NoError(t, good.validate())
	must.Eq(t, "mode=0700,uid=65534,gid=65534,size=67108864", good.MountData())
	for name, change := range map[string]func(*Scratch){
		"no bound":     func(s *Scratch) { s.SizeBytes = 0 },
		"no folders":   func(s *Scratch) { s.Dirs = nil },
		"root":         func(s *Scratch) { s.UID = 0 },
		"relative":     func(s *Scratch) { s.Dirs = []string{"app/tmp"} },
		"mount data":   func(s *Scratch) { s.Dirs = []string{"/app/tmp,size=0"} },
		"unclean":      func(s *Scratch) { s.Dirs = []string{"/app/../etc"} },
		"sandbox root": func(s *Scratch) { s.Dirs = []string{"/"} },
	} {
		s := good
		change(&s)
		must.Error(t, s.validate(), must.Sprint(name))
	}
}
