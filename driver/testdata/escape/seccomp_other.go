//go:build !amd64

package main

func archProbes() []sysProbe { return nil }
