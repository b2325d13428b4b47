// Command ocipack packs directories into a container image tarball (the
// `docker save` layout) that `ctr images import` and `docker load` accept,
// without a container runtime, a daemon or a registry:
//
//	ocipack -ref registry.k8s.io/pause:3.10.1 -out pause.tar \
//	    -layer rootfs/ -entrypoint '["/pause"]'
//
// Each -layer DIR becomes one layer, in order (later layers win). The layers
// are reproducible: entries in lexical order, owned by root, with one fixed
// modification time (-mtime, default the Unix epoch), so the same inputs give
// the same image digest, and re-importing an unchanged image changes nothing.
package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type options struct {
	ref        string
	out        string
	layers     listFlag
	entrypoint string
	cmd        string
	env        listFlag
	workdir    string
	user       string
	ports      listFlag
	labels     listFlag
	mtime      int64
}

func main() {
	var o options
	flag.StringVar(&o.ref, "ref", "", "image reference written into the tarball (required), e.g. registry.k8s.io/pause:3.10.1")
	flag.StringVar(&o.out, "out", "", "output tarball (required)")
	flag.Var(&o.layers, "layer", "directory packed as one layer, its contents at / (repeatable, in order)")
	flag.StringVar(&o.entrypoint, "entrypoint", "", `entrypoint as a JSON array, e.g. '["/pause"]'`)
	flag.StringVar(&o.cmd, "cmd", "", "cmd as a JSON array")
	flag.Var(&o.env, "env", "KEY=VALUE in the image environment (repeatable)")
	flag.StringVar(&o.workdir, "workdir", "", "working directory")
	flag.StringVar(&o.user, "user", "", "user (name or uid[:gid])")
	flag.Var(&o.ports, "port", "exposed port, PORT[/PROTO] (repeatable)")
	flag.Var(&o.labels, "label", "KEY=VALUE image label (repeatable)")
	flag.Int64Var(&o.mtime, "mtime", 0, "modification time of every entry and the creation time, in Unix seconds")
	flag.Parse()
	if o.ref == "" || o.out == "" || len(o.layers) == 0 || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(&o); err != nil {
		fmt.Fprintf(os.Stderr, "ocipack: %v\n", err)
		os.Exit(1)
	}
}

func run(o *options) error {
	ref, err := name.ParseReference(o.ref, name.WeakValidation)
	if err != nil {
		return fmt.Errorf("-ref: %w", err)
	}
	cfg, err := imageConfig(o)
	if err != nil {
		return err
	}
	stamp := time.Unix(o.mtime, 0).UTC()

	// Layers are written gzipped to temporary files next to the output:
	// the tarball is then assembled from them without compressing twice.
	tmp, err := os.MkdirTemp(filepath.Dir(o.out), ".ocipack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	var layers []v1.Layer
	history := make([]v1.History, 0, len(o.layers))
	for i, dir := range o.layers {
		path := filepath.Join(tmp, fmt.Sprintf("layer%d.tar.gz", i))
		if err := writeLayer(dir, path, stamp); err != nil {
			return fmt.Errorf("layer %s: %w", dir, err)
		}
		l, err := tarball.LayerFromFile(path)
		if err != nil {
			return fmt.Errorf("layer %s: %w", dir, err)
		}
		layers = append(layers, l)
		history = append(history, v1.History{
			Created:   v1.Time{Time: stamp},
			CreatedBy: "ocipack -layer " + filepath.Base(filepath.Clean(dir)),
		})
	}

	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.Architecture = runtime.GOARCH
	cf.OS = "linux"
	cf.Created = v1.Time{Time: stamp}
	cf.Config = cfg
	cf.History = history
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return err
	}

	// Write next to the target and rename, so that a crash never leaves a
	// truncated tarball under the final name.
	part := o.out + ".part"
	if err := tarball.WriteToFile(part, ref, img); err != nil {
		os.Remove(part)
		return err
	}
	return os.Rename(part, o.out)
}

func imageConfig(o *options) (v1.Config, error) {
	var c v1.Config
	for _, s := range []struct {
		flag string
		val  string
		dst  *[]string
	}{{"-entrypoint", o.entrypoint, &c.Entrypoint}, {"-cmd", o.cmd, &c.Cmd}} {
		if s.val == "" {
			continue
		}
		if err := json.Unmarshal([]byte(s.val), s.dst); err != nil {
			return c, fmt.Errorf("%s must be a JSON array of strings: %w", s.flag, err)
		}
	}
	for _, e := range o.env {
		if !strings.Contains(e, "=") {
			return c, fmt.Errorf("-env %q: want KEY=VALUE", e)
		}
	}
	c.Env = append([]string(nil), o.env...)
	c.WorkingDir = o.workdir
	c.User = o.user
	if len(o.ports) > 0 {
		c.ExposedPorts = map[string]struct{}{}
		for _, p := range o.ports {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			c.ExposedPorts[p] = struct{}{}
		}
	}
	if len(o.labels) > 0 {
		c.Labels = map[string]string{}
		for _, l := range o.labels {
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				return c, fmt.Errorf("-label %q: want KEY=VALUE", l)
			}
			c.Labels[k] = v
		}
	}
	return c, nil
}

// writeLayer packs the tree under dir into a gzipped tar at path.
func writeLayer(dir, path string, stamp time.Time) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	// Best speed: the layers are imported once on this machine, and the
	// conformance image carries ~170 MB of binaries.
	zw, err := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	if err := addTree(tw, dir, stamp); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

func addTree(tw *tar.Writer, root string, stamp time.Time) error {
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// WalkDir already visits in lexical order per directory; sorting the
	// full relative paths makes the order independent of that detail.
	sort.Slice(paths, func(i, j int) bool { return paths[i] < paths[j] })
	for _, p := range paths {
		if err := addEntry(tw, root, p, stamp); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

func addEntry(tw *tar.Writer, root, p string, stamp time.Time) error {
	info, err := os.Lstat(p)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return err
	}
	link := ""
	if info.Mode()&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(info, link)
	if err != nil {
		return err
	}
	hdr.Name = filepath.ToSlash(rel)
	if info.IsDir() {
		hdr.Name += "/"
	}
	// Root-owned, one timestamp: the layer depends on the contents only.
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
	hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = stamp, time.Time{}, time.Time{}
	hdr.Format = tar.FormatPAX
	switch {
	case info.Mode().IsRegular(), info.IsDir(), info.Mode()&fs.ModeSymlink != 0:
	default:
		return errors.New("only regular files, directories and symlinks can be packed")
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return nil
	}
	src, err := os.Open(p)
	if err != nil {
		return err
	}
	defer src.Close()
	_, err = io.Copy(tw, src)
	return err
}
