package build

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// TestStoredLayers: an image whose layers went to files diffs, and goes
// into a Docker archive, exactly as the same image held in memory; the
// files of images no longer kept are pruned.
func TestStoredLayers(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\nCOPY app /app\nCOPY static/ /srv/static/\nENTRYPOINT [\"/app\"]\n")
	writeFile(t, filepath.Join(dir, "app"), "binary v1")
	writeFile(t, filepath.Join(dir, "static/keep.txt"), "same")
	writeFile(t, filepath.Join(dir, "static/old.txt"), "goes away")
	v1 := assembleDir(t, dir, true)
	writeFile(t, filepath.Join(dir, "app"), "binary v2")
	writeFile(t, filepath.Join(dir, "static/new.txt"), "new")
	if err := os.Remove(filepath.Join(dir, "static/old.txt")); err != nil {
		t.Fatal(err)
	}
	v2 := assembleDir(t, dir, true)

	layers := t.TempDir()
	store := func(a *Assembled) *Assembled {
		s := &Assembled{Config: a.Config, Live: a.Live, Layers: append([]Layer(nil), a.Layers...)}
		if err := s.Store(layers); err != nil {
			t.Fatal(err)
		}
		for _, l := range s.Layers {
			if l.Data != nil {
				t.Fatalf("layer %s still in memory after Store", l.DiffID)
			}
		}
		return s
	}
	s1, s2 := store(v1), store(v2)
	for _, dirn := range [][2]*Assembled{{v1, v2}, {v2, v1}} {
		want, err := LiveDiff(dirn[0], dirn[1])
		if err != nil {
			t.Fatal(err)
		}
		from, to := s1, s2
		if dirn[0] == v2 {
			from, to = s2, s1
		}
		got, err := LiveDiff(from, to)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("stored: %+v\nin memory: %+v", got, want)
		}
	}
	var mem, disk bytes.Buffer
	if err := v2.dockerArchive(&mem, "x:1", nil); err != nil {
		t.Fatal(err)
	}
	if err := s2.dockerArchive(&disk, "x:1", nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mem.Bytes(), disk.Bytes()) {
		t.Error("the Docker archive of the stored image differs from the one in memory")
	}

	// Pruning keeps what s2 holds and what is young; the rest goes.
	old := time.Now().Add(-2 * pruneGrace)
	files, _ := filepath.Glob(filepath.Join(layers, "*"+layerExt))
	for _, f := range files {
		if err := os.Chtimes(f, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := PruneLayers(layers, []*Assembled{s2}); err != nil {
		t.Fatal(err)
	}
	for _, l := range s2.Layers {
		if _, err := os.Stat(l.Path); l.Path != "" && err != nil {
			t.Errorf("a kept layer is gone: %v", err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(layers, "*"+layerExt))
	kept := 0
	for _, l := range s2.Layers {
		if l.Path != "" {
			kept++
		}
	}
	if len(left) != kept || len(files) <= kept {
		t.Errorf("%d layer files before pruning, %d after; want %d (those of the kept image)", len(files), len(left), kept)
	}
	if err := PruneLayers(filepath.Join(layers, "missing"), nil); err != nil {
		t.Errorf("a missing folder: %v", err)
	}
}
