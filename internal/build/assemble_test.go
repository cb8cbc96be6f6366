package build

import (
	"archive/tar"
	"bytes"
	"io"
	"slices"
	"testing"
)

// TestCopyLayerLeavesParentsAlone: a COPY's layer holds the files it
// copies, not the folders above the destination, whose mode and owner
// (/tmp's 1777) an entry would reset; record still knows them as folders.
func TestCopyLayerLeavesParentsAlone(t *testing.T) {
	files := map[string]ctxEntry{
		"app": {hdr: &tar.Header{Name: "app", Typeflag: tar.TypeReg, Mode: 0o755, Size: 2}, data: []byte("hi")},
	}
	noDirs := func(string) (bool, error) { return false, nil }
	layer, err := copyLayer(files, step{line: 2, op: "copy", args: []string{"app", "/tmp/sub/app"}}, "/", "Dockerfile:2", "ctx", noDirs)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if want := []string{"tmp/sub/app"}; !slices.Equal(names, want) {
		t.Errorf("layer entries = %q, want %q", names, want)
	}
	made := map[string]byte{}
	if err := record(made, layer); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"tmp", "tmp/sub"} {
		if made[d] != tar.TypeDir {
			t.Errorf("record: %s not known as a folder (%v)", d, made)
		}
	}
	if made["tmp/sub/app"] != tar.TypeReg {
		t.Errorf("record: tmp/sub/app = %v, want a file", made["tmp/sub/app"])
	}

	wd, err := dirLayer("/var/empty/x")
	if err != nil {
		t.Fatal(err)
	}
	h, err := tar.NewReader(bytes.NewReader(wd)).Next()
	if err != nil || h.Name != "var/empty/x/" || h.Mode != 0o755 {
		t.Errorf("dirLayer: first entry %+v, %v; want var/empty/x/ 0755", h, err)
	}
}
