// Copyright (c) HashiCorp, Inc.
// SPDX-License-Identifier: MPL-2.0

// Derived from github.com/hashicorp/nomad v1.6.3 drivers/shared/executor/pty_unix.go.

//go:build linux

package sandbox

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

func setTTYSize(w io.Writer, height, width int32) error {
	f, ok := w.(*os.File)
	if !ok {
		return fmt.Errorf("attempted to resize a non-tty session")
	}
	return pty.Setsize(f, &pty.Winsize{Rows: uint16(height), Cols: uint16(width)})
}

func isUnixEIOErr(err error) bool {
	return err != nil && strings.Contains(err.Error(), unix.EIO.Error())
}
