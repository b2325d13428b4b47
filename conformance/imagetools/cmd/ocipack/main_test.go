package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The nonewprivs image needs its /usr/local/bin/nnp setuid root in the layer.
func TestAddTreeKeepsSpecialModesAndRootOwnership(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(root, "usr", "local", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]int64{"nnp": 0o4755, "sg": 0o2755, "plain": 0o644}
	for name, mode := range files {
		p := filepath.Join(bin, name)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		// Chmod, not WriteFile's mode: the umask never clears special bits here.
		if err := os.Chmod(p, os.FileMode(mode&0o777)|specialBits(mode)); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(root, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := addTree(tw, root, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}

	want := map[string]int64{"tmp/": 0o1777}
	for name, mode := range files {
		want["usr/local/bin/"+name] = mode
	}
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Uid != 0 || hdr.Gid != 0 {
			t.Errorf("%s: owner %d:%d, want 0:0", hdr.Name, hdr.Uid, hdr.Gid)
		}
		if mode, ok := want[hdr.Name]; ok {
			if hdr.Mode != mode {
				t.Errorf("%s: mode %o, want %o", hdr.Name, hdr.Mode, mode)
			}
			delete(want, hdr.Name)
		}
	}
	for name := range want {
		t.Errorf("%s missing from the layer", name)
	}
}

func specialBits(mode int64) os.FileMode {
	var m os.FileMode
	if mode&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if mode&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	return m
}
