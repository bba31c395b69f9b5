package router

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every router,
// dyno connection, queue waiter and Consul watch must end when its test ends.
func TestMain(m *testing.M) {
	testClient.CloseIdleConnections()
	goleak.VerifyTestMain(m,
		// The shared test client's kept-alive connections.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}
