package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// scaleContext writes a service like the scale benchmark's (bench/): a
// FROM-scratch Dockerfile that COPYs a program and data/, with files more
// files under data/many in 1,000 folders. It returns the spec.
func scaleContext(b *testing.B, files int) Spec {
	b.Helper()
	dir := b.TempDir()
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "data"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "probe"), make([]byte, 2<<20), 0o755))
	must(os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY probe /probe\nCOPY data /data\nENTRYPOINT [\"/probe\"]\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "data", "version.txt"), []byte("start"), 0o644))
	old := time.Now().Add(-time.Hour)
	for f := range files {
		sub := filepath.Join(dir, "data", "many", fmt.Sprintf("d%04d", f%1000))
		if f < 1000 {
			must(os.MkdirAll(sub, 0o755))
		}
		p := filepath.Join(sub, fmt.Sprintf("f%05d.txt", f))
		must(os.WriteFile(p, []byte(strconv.Itoa(f)), 0o644))
		must(os.Chtimes(p, old, old))
	}
	return Spec{Service: "s01", Project: "scale", Context: dir}
}

// BenchmarkImage50kOneChange times what a save costs build.Image before it
// talks to Docker (FROM scratch needs none): the service built once, then
// data/version.txt changed and the image built again, with the changed
// path passed as the watch loop passes it. small is the same service
// without the 50,000 files; the difference is what the big context costs.
func BenchmarkImage50kOneChange(b *testing.B) {
	for _, tc := range []struct {
		name  string
		files int
	}{{"small", 0}, {"50k", 50_000}} {
		b.Run(tc.name, func(b *testing.B) {
			spec := scaleContext(b, tc.files)
			st, err := LoadState(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			opts := ImageOptions{State: st, Live: true, Background: true}
			ctx := context.Background()
			if _, err := Image(ctx, nil, spec, opts); err != nil {
				b.Fatal(err)
			}
			version := filepath.Join(spec.Context, "data", "version.txt")
			n := 0
			for b.Loop() {
				n++
				if err := os.WriteFile(version, []byte("save "+strconv.Itoa(n)), 0o644); err != nil {
					b.Fatal(err)
				}
				if _, err := Image(ctx, nil, spec, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkImage50kSplit times the steps of the same one-change build of
// the 50,000-file service one by one (ms each, as metrics): the
// fingerprint's walk, the context's tar (walk, read, pack, hash), the
// assembly (tar parsed, COPY layers packed and hashed) and the store of
// the layers to files (indexed, written).
func BenchmarkImage50kSplit(b *testing.B) {
	spec := scaleContext(b, 50_000)
	st, err := LoadState(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	r, err := recipeOf(spec, ContextOptions{})
	if err != nil {
		b.Fatal(err)
	}
	version := filepath.Join(spec.Context, "data", "version.txt")
	labels := map[string]string{LabelProject: spec.Project, LabelService: spec.Service}
	var fp, tarT, asm, store time.Duration
	n := 0
	for b.Loop() {
		n++
		if err := os.WriteFile(version, []byte("save "+strconv.Itoa(n)), 0o644); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := fingerprint(spec, ContextOptions{}, "", true); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		data, dfName, _, err := buildContext(spec, ContextOptions{})
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		a, err := assemble(ctx, nil, spec, r, data, dfName, labels, true)
		if err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		if err := a.Store(st.LayerDir()); err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		fp, tarT, asm, store = fp+t1.Sub(t0), tarT+t2.Sub(t1), asm+t3.Sub(t2), store+t4.Sub(t3)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(n) }
	b.ReportMetric(ms(fp), "fingerprint-ms")
	b.ReportMetric(ms(tarT), "context-tar-ms")
	b.ReportMetric(ms(asm), "assemble-ms")
	b.ReportMetric(ms(store), "store-ms")
}
