package addon

import (
	"encoding/json"
	"errors"
	"fmt"
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

func TestRemember_MakesOnceThenRemembers(t *testing.T) {
	t.Parallel()
	s, err := OpenStore(t.TempDir(), "state.json")
	must.NoError(t, err)
	calls := 0
	create := func() (string, error) { calls++; return fmt.Sprint("made-", calls), nil }
	v1, err := Remember(s, "r1", create)
	must.NoError(t, err)
	v2, err := Remember(s, "r1", create)
	must.NoError(t, err)
	must.Eq(t, "made-1", v1)
	must.Eq(t, v1, v2)
	must.Eq(t, 1, calls)
	_, err = Remember(s, "r2", func() (string, error) { return "", errors.New("backend down") })
	must.ErrorContains(t, err, "backend down")
	ok, _ := s.Get("r2", new(string))
	must.False(t, ok, must.Sprint("a failed make records nothing"))
	must.NoError(t, s.Forget("r1"))
	must.NoError(t, s.Forget("r1"))
	v3, _ := Remember(s, "r1", create)
	must.Eq(t, "made-2", v3)
}

func TestConfig_Require(t *testing.T) {
	t.Parallel()
	c := Config{Settings: map[string]string{"a": "1", "empty": ""}}
	v, err := c.Require("a")
	must.NoError(t, err)
	must.Eq(t, "1", v)
	_, err = c.Require("empty")
	must.ErrorContains(t, err, `setting "empty" is required`)
	must.Eq(t, "d", c.Get("missing", "d"))
}
