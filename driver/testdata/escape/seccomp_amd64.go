package main

import "golang.org/x/sys/unix"

func archProbes() []sysProbe {
	return []sysProbe{
		{"iopl", unix.SYS_IOPL, [6]uintptr{4}, unix.EPERM},
		{"ioperm", unix.SYS_IOPERM, [6]uintptr{0x10000, 1, 1}, unix.EPERM},
		{"uselib", unix.SYS_USELIB, [6]uintptr{0}, unix.EPERM},
	}
}
