package addonhost

import (
	"errors"
	"fmt"
)

// Kind classifies what went wrong with an add-on, so that the caller can tell what a
// retry would do: after KindCrashed or KindTimeout the resource may or may not exist,
// and a retry with the same request ID finds it again.
type Kind int

const (
	// KindNotFound: no plugin binary of that name in the plugin directory.
	KindNotFound Kind = iota + 1
	// KindStart: the program did not start as an add-on plugin (not a plugin,
	// another protocol version, a start timeout, a handshake failure).
	KindStart
	// KindCrashed: the plugin process died or closed the connection during a call.
	KindCrashed
	// KindTimeout: the call did not answer before its deadline (or was canceled);
	// the plugin was stopped.
	KindTimeout
	// KindInvalidAnswer: the plugin answered something the protocol does not allow.
	KindInvalidAnswer
	// KindRejected: the add-on answered with an error of its own (bad settings,
	// its backing service refused...).
	KindRejected
	// KindInvalidRequest: the caller's request is malformed; nothing was sent.
	KindInvalidRequest
)

func (k Kind) String() string {
	switch k {
	case KindNotFound:
		return "not found"
	case KindStart:
		return "failed to start"
	case KindCrashed:
		return "crashed"
	case KindTimeout:
		return "timed out"
	case KindInvalidAnswer:
		return "invalid answer"
	case KindRejected:
		return "rejected"
	case KindInvalidRequest:
		return "invalid request"
	}
	return "unknown"
}

// Error is every error the host returns about an add-on: it names the add-on, the
// operation and the problem.
type Error struct {
	Addon string
	Op    string // "start", "configure", "describe", "provision", "deprovision"
	Kind  Kind
	Err   error
}

func (e *Error) Error() string {
	return fmt.Sprintf("add-on %q: %s: %s: %v", e.Addon, e.Op, e.Kind, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of an error returned by this package, or 0.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// Retryable tells whether a retry of the same call with the same request ID makes
// sense: the plugin crashed or timed out, so the resource may be half made.
func Retryable(err error) bool {
	k := KindOf(err)
	return k == KindCrashed || k == KindTimeout
}
