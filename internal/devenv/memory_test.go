package devenv

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/watch"
)

// scratchBuilder assembles FROM-scratch images with build.Image and no
// Docker engine: the loop's real assembly path, without a daemon.
type scratchBuilder struct {
	project string
	state   *build.State
}

func (b scratchBuilder) Build(ctx context.Context, s *config.Service, o buildOptions) (built, error) {
	if o.BeforeImage != nil {
		o.BeforeImage()
	}
	spec := build.Spec{Service: s.Name, Project: b.project, Context: s.Context, Dockerfile: s.Dockerfile}
	res, err := build.Image(ctx, nil, spec, build.ImageOptions{Live: true, State: b.state})
	if err != nil {
		return built{}, err
	}
	return built{Ref: res.Ref, Assembled: res.Assembled, NoLive: res.NoLive}, nil
}

// discardCluster takes every live update and keeps nothing of it.
type discardCluster struct {
	targets map[string][]cluster.LiveTarget
}

func (d discardCluster) LiveTargets(_ context.Context, _, service string) ([]cluster.LiveTarget, error) {
	return d.targets[service], nil
}

func (discardCluster) LiveUpdate(context.Context, cluster.LiveTarget, []byte, []string, int, time.Duration) error {
	return nil
}

// TestLoopMemoryIsFlatOverSaves runs the loop's assemble / remember /
// live-update path 100 times over generated services whose binary
// changes on every save, and checks that the heap after GC holds no
// image's layer bytes (it stays within a bound well under one binary
// from the 10th to the 100th save) and that no goroutine is left behind.
func TestLoopMemoryIsFlatOverSaves(t *testing.T) {
	if raceEnabled {
		t.Skip("100 assemblies take minutes under the race detector, whose own memory skews the heap figures")
	}
	const (
		appSize = 1 << 20 // each service's binary, rewritten on every save
		static  = 100     // small files beside it
		saves   = 100
	)
	dir := t.TempDir()
	services := []string{"alpha", "beta"}
	rnd := rand.New(rand.NewPCG(1, 2))
	app := make([]byte, appSize)
	for i := range app {
		app[i] = byte(rnd.Uint32())
	}
	n := uint64(0)
	writeApp := func(s string) {
		n++
		binary.LittleEndian.PutUint64(app, n) // a new binary, as after a one-line change
		if err := os.WriteFile(filepath.Join(dir, s, "app"), app, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	yaml := "name: mem\nservices:\n"
	for _, s := range services {
		if err := os.MkdirAll(filepath.Join(dir, s, "static"), 0o755); err != nil {
			t.Fatal(err)
		}
		df := "FROM scratch\nCOPY app /app\nCOPY static/ /srv/static/\nENTRYPOINT [\"/app\"]\n"
		if err := os.WriteFile(filepath.Join(dir, s, "Dockerfile"), []byte(df), 0o644); err != nil {
			t.Fatal(err)
		}
		for i := range static {
			if err := os.WriteFile(filepath.Join(dir, s, "static", fmt.Sprintf("f%03d.txt", i)), []byte(fmt.Sprintf("file %d of %s\n", i, s)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		writeApp(s)
		yaml += fmt.Sprintf("  %s: {context: ./%s, port: 8080}\n", s, s)
	}
	files := filepath.Join(dir, "devenv.yaml")
	if err := os.WriteFile(files, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(files)
	if err != nil {
		t.Fatal(err)
	}
	state, err := build.LoadState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	opts := Options{Live: true, RolloutTimeout: time.Minute}
	l := newLoop(cfg, map[string]string{}, opts, &progress{log: opts.logger()}, scratchBuilder{project: "mem", state: state}, fakeFinder{})
	l.layerDir = state.LayerDir()
	c := discardCluster{targets: map[string][]cluster.LiveTarget{}}
	l.live = c
	l.watching = true
	if err := l.buildAll(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range services {
		c.targets[s] = []cluster.LiveTarget{{Namespace: "mem", Pod: s + "-1", Container: s, ContainerID: "c-" + s, Image: l.images[s]}}
	}
	l.parts = map[string]*build.Assembled{} // loaded by Up

	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var heap10 uint64
	var goroutines10 int
	for i := 1; i <= saves; i++ {
		s := services[i%len(services)]
		writeApp(s)
		before := l.images[s]
		l.handle(ctx, watch.Batch{Services: map[string][]string{s: {"app"}}}, []string{files})
		if l.images[s] == before || l.content["c-"+s] != l.images[s] {
			t.Fatalf("save %d of %s: image %s (was %s), container holds %s: want a live update to a new image", i, s, l.images[s], before, l.content["c-"+s])
		}
		if i == 10 {
			heap10, goroutines10 = heap(), runtime.NumGoroutine()
		}
	}
	heap100, goroutines100 := heap(), runtime.NumGoroutine()
	runtime.KeepAlive(app) // live at both measures
	t.Logf("heap after GC: %.1f MB at save 10, %.1f MB at save 100; goroutines %d, %d",
		float64(heap10)/(1<<20), float64(heap100)/(1<<20), goroutines10, goroutines100)
	// Flat within 10%, plus 1 MB for the runtime's own noise.
	if limit := heap10 + heap10/10 + 1<<20; heap100 > limit {
		t.Errorf("heap after GC grew from %d to %d bytes between save 10 and save 100 (limit %d)", heap10, heap100, limit)
	}
	// Layer bytes held for 4 images of 2 services would be 8 binaries
	// (8 MB); the indexes are a few kB, the test's own binary buffer one,
	// and the supervisor's layer is made once per process.
	if sup := uint64(build.LiveLayerBytes()); heap10 > 2*appSize+4<<20+sup {
		t.Errorf("heap after GC at save 10 is %d bytes (%d of them the supervisor's layer): the loop holds layer bytes (4 images of %d-byte binaries per service)", heap10, sup, appSize)
	}
	if goroutines100 > goroutines10+2 {
		t.Errorf("goroutines grew from %d to %d between save 10 and save 100", goroutines10, goroutines100)
	}
	for ref := range l.known {
		for _, ly := range l.known[ref].Layers {
			if ly.Data != nil {
				t.Fatalf("image %s holds layer %s's bytes in memory", ref, ly.DiffID)
			}
		}
	}
}
