package slug

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Unpack extracts a slug archive (.tar.gz) into dir, an existing directory.
//
// Every entry is written through an os.Root of dir, so nothing lands outside it: a name
// that climbs out with "..", or that leads through a symlink pointing out of dir, fails
// the whole unpacking. Absolute names are taken relative to dir. Unpack keeps
// directories, regular files (mode 0644, or 0755 when any execute bit is set, without
// setuid, setgid or ownership), symlinks, and hard links to regular files of the slug; it
// skips devices, fifos and other special files. It makes ./tmp and ./log plain
// directories, replacing what the archive put there, since each dyno mounts its own over
// them.
func Unpack(r io.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("not a gzip archive: %w", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("corrupt tar archive: %w", err)
		}
		if err := unpackEntry(root, hdr, tr); err != nil {
			return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
		}
	}
	for d := range emptyDirs {
		if err := plainDir(root, d); err != nil {
			return err
		}
	}
	return nil
}

// unpackEntry writes one archive entry into root, whose contents are r.
func unpackEntry(root *os.Root, hdr *tar.Header, r io.Reader) error {
	name := entryName(hdr.Name)
	if name == "." {
		return nil
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return root.MkdirAll(name, 0o755)
	case tar.TypeReg:
		mode := fs.FileMode(0o644)
		if hdr.Mode&0o111 != 0 {
			mode = 0o755
		}
		if err := replaceable(root, name); err != nil {
			return err
		}
		// O_EXCL: a symlink left at name is an error, never followed.
		f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
		if err != nil {
			return err
		}
		_, cerr := io.Copy(f, r)
		return errors.Join(cerr, f.Close())
	case tar.TypeSymlink:
		if err := replaceable(root, name); err != nil {
			return err
		}
		// The link is resolved inside the dyno's sandbox, never by the unpacker.
		return root.Symlink(hdr.Linkname, name)
	case tar.TypeLink:
		target := entryName(hdr.Linkname)
		if st, err := root.Lstat(target); err != nil || !st.Mode().IsRegular() {
			return fmt.Errorf("hard link to %q, which is not a file of the slug", hdr.Linkname)
		}
		if err := replaceable(root, name); err != nil {
			return err
		}
		return root.Link(target, name)
	default:
		// Devices, fifos and the like have no place in an app.
		return nil
	}
}

// entryName is an archive name relative to the slug's root ("." for the root itself).
func entryName(n string) string {
	return path.Clean("./" + strings.TrimLeft(n, "/"))
}

// replaceable makes way for name: its parent directories exist and an earlier entry of
// the same name (not a directory) is gone.
func replaceable(root *os.Root, name string) error {
	if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
		return err
	}
	if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// plainDir makes name a directory, replacing a file or symlink there.
func plainDir(root *os.Root, name string) error {
	if st, err := root.Lstat(name); err == nil && !st.IsDir() {
		if err := root.Remove(name); err != nil {
			return err
		}
	}
	return root.MkdirAll(name, 0o755)
}
