package build

import (
	"context"
	"crypto/sha256"
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
				o := opts
				o.Changed = []string{"data/version.txt"}
				if _, err := Image(ctx, nil, spec, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkImage50kSplit times the steps of the same one-change build of
// the 50,000-file service one by one (ms each, as metrics): the scan of
// the changed path, the fingerprint, the assembly (COPY layers written
// from the last image's and the changed file, and hashed), the context's
// digest and the store of the other layers to files.
func BenchmarkImage50kSplit(b *testing.B) {
	spec := scaleContext(b, 50_000)
	st, err := LoadState(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	opts := ImageOptions{State: st, Live: true, Background: true}
	if _, err := Image(ctx, nil, spec, opts); err != nil {
		b.Fatal(err)
	}
	r, err := recipeOf(spec, ContextOptions{})
	if err != nil {
		b.Fatal(err)
	}
	dfBytes, dfName, err := dockerfileOf(spec, ContextOptions{})
	if err != nil {
		b.Fatal(err)
	}
	c := st.contextCache(spec.Service)
	version := filepath.Join(spec.Context, "data", "version.txt")
	labels := map[string]string{LabelProject: spec.Project, LabelService: spec.Service}
	var scan, fp, asm, dig, store time.Duration
	n := 0
	for b.Loop() {
		n++
		if err := os.WriteFile(version, []byte("save "+strconv.Itoa(n)), 0o644); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := c.update(spec, dfName, []string{"data/version.txt"}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := fingerprint(spec, ContextOptions{}, "", true, c); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		in := assembleInput{cache: c, dfBytes: dfBytes, layerDir: st.LayerDir(), chunks: map[[sha256.Size]byte]*chunk{}}
		a, err := assemble(ctx, nil, spec, r, in, labels, true, st)
		if err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		if _, err := c.digest(spec, dfBytes); err != nil {
			b.Fatal(err)
		}
		c.chunks = in.chunks
		t4 := time.Now()
		if err := a.Store(st.LayerDir()); err != nil {
			b.Fatal(err)
		}
		t5 := time.Now()
		scan, fp, asm, dig, store = scan+t1.Sub(t0), fp+t2.Sub(t1), asm+t3.Sub(t2), dig+t4.Sub(t3), store+t5.Sub(t4)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(n) }
	b.ReportMetric(ms(scan), "scan-ms")
	b.ReportMetric(ms(fp), "fingerprint-ms")
	b.ReportMetric(ms(asm), "assemble-ms")
	b.ReportMetric(ms(dig), "digest-ms")
	b.ReportMetric(ms(store), "store-ms")
}
