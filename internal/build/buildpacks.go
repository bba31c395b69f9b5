package build

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/dynogrid/dynogrid/buildpacks"
	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/internal/slug"
)

// Limits of third-party buildpacks.
const (
	// MaxBuildpackBytes bounds a buildpack's files, from a directory or an archive.
	MaxBuildpackBytes = 50 << 20
	// buildpackDownloadTimeout bounds the download of a buildpack archive.
	buildpackDownloadTimeout = 2 * time.Minute
)

// buildpackScripts are the programs of the classic buildpack contract.
var buildpackScripts = []string{"detect", "compile", "release"}

// assemble writes the build dyno's /app into dir: builder/build, and buildpacks/NN-NAME
// for each buildpack in the order they run, with buildpacks/order ("auto" when the spec
// names none and the first built-in that detects the app builds it, "all" otherwise).
func assemble(ctx context.Context, dir string, list []appspec.Buildpack) error {
	if err := copyEmbedded("builder", filepath.Join(dir, "builder")); err != nil {
		return err
	}
	order := "all"
	if len(list) == 0 {
		order = "auto"
		for _, name := range buildpacks.BuiltIn {
			list = append(list, appspec.Buildpack{BuiltIn: name})
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "buildpacks"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "buildpacks", "order"), []byte(order+"\n"), 0o644); err != nil {
		return err
	}
	for i, bp := range list {
		dst := filepath.Join(dir, "buildpacks", fmt.Sprintf("%02d-%s", i+1, buildpackName(bp)))
		var err error
		switch {
		case bp.BuiltIn != "":
			err = copyEmbedded(bp.BuiltIn, dst)
		case bp.Dir != "":
			err = copyDir(bp.Dir, dst)
		case bp.URL != "":
			err = download(ctx, bp.URL, dst)
		}
		if err == nil {
			err = checkScripts(dst)
		}
		if err != nil {
			return fmt.Errorf("buildpack %d (%s): %w", i+1, bp, err)
		}
	}
	return nil
}

// buildpackName is a short name of the buildpack for the build's output: the built-in
// name, or the last element of the directory or URL path, in safe characters.
func buildpackName(bp appspec.Buildpack) string {
	name := bp.BuiltIn
	switch {
	case bp.Dir != "":
		name = filepath.Base(bp.Dir)
	case bp.URL != "":
		name = path.Base(strings.SplitN(bp.URL, "?", 2)[0])
		name = strings.TrimSuffix(strings.TrimSuffix(name, ".tar.gz"), ".tgz")
	}
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, name)
	if len(clean) > 40 {
		clean = clean[:40]
	}
	if clean == "" || clean == "." || clean == ".." {
		clean = "buildpack"
	}
	return clean
}

// copyEmbedded copies a directory of the built-in buildpacks; bin/ programs and
// builder/build are made executable (embedding keeps no modes).
func copyEmbedded(name, dst string) error {
	return fs.WalkDir(buildpacks.FS, name, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dst, strings.TrimPrefix(p, name))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := buildpacks.FS.ReadFile(p)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(path.Dir(p), name+"/bin") || p == "builder/build" {
			mode = 0o755
		}
		return os.WriteFile(target, b, mode)
	})
}

// copyDir copies a buildpack's directory: regular files, directories and symlinks that
// stay inside it, at most MaxBuildpackBytes in all.
func copyDir(src, dst string) error {
	var total int64
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return os.MkdirAll(target, 0o755)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if filepath.IsAbs(link) || !filepath.IsLocal(filepath.Join(filepath.Dir(rel), link)) {
				return fmt.Errorf("%s links out of the buildpack (to %s)", rel, link)
			}
			return os.Symlink(link, target)
		case !info.Mode().IsRegular():
			return nil
		}
		if total += info.Size(); total > MaxBuildpackBytes {
			return fmt.Errorf("holds more than %d MB", MaxBuildpackBytes>>20)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm()&0o755)
	})
}

// download fetches a buildpack's .tar.gz archive and unpacks it into dst. An archive
// whose files are all in one top-level directory (as GitHub's are) is that directory.
func download(ctx context.Context, url, dst string) error {
	ctx, cancel := context.WithTimeout(ctx, buildpackDownloadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("download failed: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download failed: %s", resp.Status)
	}
	if resp.ContentLength > MaxBuildpackBytes {
		return fmt.Errorf("the archive is larger than %d MB", MaxBuildpackBytes>>20)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	body := &limitedReader{r: resp.Body, left: MaxBuildpackBytes}
	if err := slug.Unpack(body, dst); err != nil {
		if body.over {
			return fmt.Errorf("the archive is larger than %d MB", MaxBuildpackBytes>>20)
		}
		return fmt.Errorf("not a buildpack archive: %w", err)
	}
	return hoistSingleDir(dst)
}

// hoistSingleDir moves the contents of dst's only directory up into dst, when dst holds
// that directory and, besides, only the tmp and log directories Unpack makes.
func hoistSingleDir(dst string) error {
	entries, err := os.ReadDir(dst)
	if err != nil {
		return err
	}
	var only string
	for _, e := range entries {
		if e.Name() == "tmp" || e.Name() == "log" {
			continue
		}
		if !e.IsDir() || only != "" || e.Name() == "bin" {
			return nil
		}
		only = e.Name()
	}
	if only == "" {
		return nil
	}
	inner := filepath.Join(dst, only)
	moved, err := os.ReadDir(inner)
	if err != nil {
		return err
	}
	for _, e := range moved {
		if e.Name() == "tmp" || e.Name() == "log" {
			continue
		}
		if err := os.Rename(filepath.Join(inner, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return os.RemoveAll(inner)
}

// checkScripts makes sure the buildpack has the contract's three programs.
func checkScripts(dir string) error {
	for _, s := range buildpackScripts {
		st, err := os.Stat(filepath.Join(dir, "bin", s))
		if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("it has no executable bin/%s; a buildpack holds bin/detect, bin/compile and bin/release", s)
		}
	}
	return nil
}

// limitedReader reads at most left bytes and fails beyond them, noting it.
type limitedReader struct {
	r    io.Reader
	left int64
	over bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		l.over = true
		return 0, fmt.Errorf("more than the limit")
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}
