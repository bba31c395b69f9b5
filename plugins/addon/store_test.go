package addon

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/shoenig/test/must"
)

func TestStore_ConcurrentUpdatesKeepEveryRecord(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := OpenStore(dir, "state.json")
			must.NoError(t, err)
			must.NoError(t, s.Update(func(r map[string]json.RawMessage) error {
				r[string(rune('a'+i))] = json.RawMessage(`1`)
				return nil
			}))
		}(i)
	}
	wg.Wait()
	s, _ := OpenStore(dir, "state.json")
	n := 0
	must.NoError(t, s.Update(func(r map[string]json.RawMessage) error { n = len(r); return nil }))
	must.Eq(t, 20, n)
	var v int
	ok, err := s.Get("c", &v)
	must.NoError(t, err)
	must.True(t, ok)
	must.Eq(t, 1, v)
	ok, _ = s.Get("zz", &v)
	must.False(t, ok)
	_, err = OpenStore("", "x")
	must.ErrorContains(t, err, "no state directory")
}
