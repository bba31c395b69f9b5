package addon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Store keeps small records keyed by request ID in one JSON file in the add-on's state
// directory, so that a retried Provision finds what the first attempt made. Every
// change is written to a new file and renamed over the old one, under an exclusive
// lock shared by every process of the add-on on the host.
type Store struct {
	path string
}

// OpenStore returns the store in file name of dir (Config.StateDir), creating dir.
func OpenStore(dir, name string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("no state directory: the host passed none (state_dir in its add-on configuration)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create the state directory: %w", err)
	}
	return &Store{path: filepath.Join(dir, name)}, nil
}

// Update runs fn on the records with the store locked and saves them when fn returns
// nil. fn may change the map (set or delete keys).
func (s *Store) Update(fn func(records map[string]json.RawMessage) error) error {
	return s.locked(true, fn)
}

// Get decodes the record of key into v and tells whether there was one.
func (s *Store) Get(key string, v any) (bool, error) {
	found := false
	err := s.locked(false, func(records map[string]json.RawMessage) error {
		raw, ok := records[key]
		if !ok {
			return nil
		}
		found = true
		return json.Unmarshal(raw, v)
	})
	return found, err
}

func (s *Store) locked(write bool, fn func(records map[string]json.RawMessage) error) error {
	lock, err := os.OpenFile(s.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("failed to open the state lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("failed to lock the state: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck

	records := map[string]json.RawMessage{}
	data, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("failed to read the state: %w", err)
	default:
		if err := json.Unmarshal(data, &records); err != nil {
			return fmt.Errorf("failed to decode the state in %s: %w", s.path, err)
		}
	}
	if err := fn(records); err != nil || !write {
		return err
	}
	data, err = json.MarshalIndent(records, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to encode the state: %w", err)
	}
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("failed to write the state: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("failed to write the state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("failed to sync the state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("failed to write the state: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("failed to replace the state: %w", err)
	}
	return nil
}

// Remember returns the record of key if the store has one, or else calls create, saves
// its result under key and returns it, all under the store's lock: the usual shape of
// an idempotent Provision whose whole resource is the record (a generated secret, an
// allocated name). When making the resource takes an outside call, save your intent
// under the request ID first (Update), then make it, so a retry can finish the job.
func Remember[T any](s *Store, key string, create func() (T, error)) (T, error) {
	var v T
	err := s.Update(func(records map[string]json.RawMessage) error {
		if raw, ok := records[key]; ok {
			return json.Unmarshal(raw, &v)
		}
		made, err := create()
		if err != nil {
			return err
		}
		raw, err := json.Marshal(made)
		if err != nil {
			return fmt.Errorf("failed to encode the record: %w", err)
		}
		records[key], v = raw, made
		return nil
	})
	return v, err
}

// Forget deletes the record of key; a missing record is no error.
func (s *Store) Forget(key string) error {
	return s.Update(func(records map[string]json.RawMessage) error {
		delete(records, key)
		return nil
	})
}
