package devgrid

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Gone says whether the grid has stopped running and why, for a process that holds it,
// such as a foreground `dyno dev up`; why is empty while the grid runs. stopped says
// that Down stopped it, called from elsewhere (`dyno dev down`): the state in the data
// directory says it is stopping, is gone, or names other agents. Otherwise an agent of
// the grid exited on its own.
func (g *Grid) Gone() (why string, stopped bool) {
	var exited []string
	for _, a := range g.Agents {
		if !processAlive(a.PID) {
			exited = append(exited, fmt.Sprintf("%s (pid %d, log %s)", a.Name, a.PID, a.Log))
		}
	}
	// The state is read after the agents were looked at: Down marks it as stopping
	// before it stops any agent, so an agent that Down stopped is never taken for one
	// that exited on its own.
	cur, err := Load(g.Options.DataDir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Sprintf("its state %s was removed", g.Options.statePath()), true
	case err == nil && cur.Stopping:
		return "it is being stopped (dyno dev down)", true
	case err == nil && !sameAgents(cur.Agents, g.Agents):
		return fmt.Sprintf("another grid runs in its data directory %s", g.Options.DataDir), true
	}
	if len(exited) > 0 {
		return strings.Join(exited, ", ") + " exited on its own", false
	}
	return "", false
}

func sameAgents(a, b []Agent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].PID != b[i].PID {
			return false
		}
	}
	return true
}
