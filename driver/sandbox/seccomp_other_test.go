//go:build !amd64

package sandbox

var seccompArchCases []seccompCase
