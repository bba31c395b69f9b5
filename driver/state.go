package driver

import "sync"

// taskStore is the driver's running dynos by task ID.
type taskStore struct {
	mu    sync.RWMutex
	store map[string]*taskHandle
}

func newTaskStore() *taskStore { return &taskStore{store: map[string]*taskHandle{}} }

func (ts *taskStore) Set(id string, h *taskHandle) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.store[id] = h
}

func (ts *taskStore) Get(id string) (*taskHandle, bool) {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	h, ok := ts.store[id]
	return h, ok
}

func (ts *taskStore) Delete(id string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	delete(ts.store, id)
}

// allocHasTasks says whether a dyno of the allocation is in the store.
func (ts *taskStore) allocHasTasks(allocID string) bool {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	for _, h := range ts.store {
		if h.state.TaskConfig != nil && h.state.TaskConfig.AllocID == allocID {
			return true
		}
	}
	return false
}
