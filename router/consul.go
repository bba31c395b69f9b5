package router

import "context"

type watcher struct{ r *Router }

func newWatcher(r *Router) (*watcher, error) { return &watcher{r: r}, nil }
func (w *watcher) run(ctx context.Context)   { <-ctx.Done() }
