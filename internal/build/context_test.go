package build

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readTar returns the tar's entries as name -> content (directories end in "/").
func readTar(t *testing.T, r io.Reader) (map[string]string, []*tar.Header) {
	t.Helper()
	files := map[string]string{}
	var hdrs []*tar.Header
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, hdrs
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = string(b)
		hdrs = append(hdrs, h)
	}
}

func sampleContext(t *testing.T) string {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\nCOPY app /app\n")
	writeFile(t, filepath.Join(dir, "app"), "binary")
	writeFile(t, filepath.Join(dir, "src", "main.go"), "package main")
	writeFile(t, filepath.Join(dir, "node_modules", "x", "index.js"), "js")
	writeFile(t, filepath.Join(dir, "logs", "a.log"), "log")
	writeFile(t, filepath.Join(dir, "build", "keep.txt"), "keep")
	writeFile(t, filepath.Join(dir, "build", "drop.txt"), "drop")
	writeFile(t, filepath.Join(dir, ".dockerignore"), "node_modules\n**/*.log\nbuild\n!build/keep.txt\nDockerfile\n")
	return dir
}

func TestContextHonoursDockerignore(t *testing.T) {
	dir := sampleContext(t)
	r, digest, err := Context(Spec{Service: "svc", Context: dir}, ContextOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(digest, "sha256:") || len(digest) != 71 {
		t.Errorf("digest = %q, want sha256:<64 hex>", digest)
	}
	files, hdrs := readTar(t, r)
	for _, want := range []string{"Dockerfile", "app", "src/main.go", "build/keep.txt", ".dockerignore"} {
		if _, ok := files[want]; !ok {
			t.Errorf("%s missing from the context; got %v", want, keysOf(files))
		}
	}
	for _, gone := range []string{"node_modules/", "node_modules/x/index.js", "logs/a.log", "build/drop.txt"} {
		if _, ok := files[gone]; ok {
			t.Errorf("%s is in the context although .dockerignore excludes it", gone)
		}
	}
	if files["Dockerfile"] != "FROM scratch\nCOPY app /app\n" {
		t.Errorf("Dockerfile content = %q", files["Dockerfile"])
	}
	var names []string
	for _, h := range hdrs {
		names = append(names, h.Name)
		if !h.ModTime.Equal(time.Unix(0, 0)) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: mtime %v uid %d gid %d uname %q: want zeroed", h.Name, h.ModTime, h.Uid, h.Gid, h.Uname)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("entries not sorted: %v", names)
	}
}

func keysOf(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestContextDeterministic(t *testing.T) {
	dir := sampleContext(t)
	spec := Spec{Service: "svc", Context: dir}
	_, d1, err := Context(spec, ContextOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Touching files changes mtimes but not content: same digest.
	later := time.Now().Add(time.Hour)
	for _, f := range []string{"app", "src/main.go", "Dockerfile"} {
		if err := os.Chtimes(filepath.Join(dir, f), later, later); err != nil {
			t.Fatal(err)
		}
	}
	_, d2, err := Context(spec, ContextOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 {
		t.Errorf("digest changed after touching files: %s -> %s", d1, d2)
	}
	// An ignored file changing does not matter either.
	writeFile(t, filepath.Join(dir, "logs", "b.log"), "more")
	if _, d3, _ := Context(spec, ContextOptions{}); d3 != d1 {
		t.Errorf("digest changed after an ignored file was added")
	}
	// A content change does.
	writeFile(t, filepath.Join(dir, "app"), "binary v2")
	_, d4, err := Context(spec, ContextOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d4 == d1 {
		t.Error("digest unchanged after app changed")
	}
}

func TestContextDockerfileReplacement(t *testing.T) {
	dir := sampleContext(t)
	before, _ := os.ReadFile(filepath.Join(dir, "Dockerfile"))
	repl := []byte("FROM devenv.local/jre:17\nCOPY app /app\n")
	r, d1, err := Context(Spec{Service: "svc", Context: dir}, ContextOptions{Dockerfile: repl})
	if err != nil {
		t.Fatal(err)
	}
	files, _ := readTar(t, r)
	if files["Dockerfile"] != string(repl) {
		t.Errorf("Dockerfile in tar = %q, want the replacement", files["Dockerfile"])
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "Dockerfile")); string(after) != string(before) {
		t.Error("the user's Dockerfile was modified")
	}
	_, d2, _ := Context(Spec{Service: "svc", Context: dir}, ContextOptions{})
	if d1 == d2 {
		t.Error("replacement Dockerfile did not change the digest")
	}
}

func TestContextDockerfileElsewhere(t *testing.T) {
	dir := sampleContext(t)
	df := filepath.Join(t.TempDir(), "Dockerfile.dev")
	writeFile(t, df, "FROM scratch\n")
	data, name, _, err := buildContext(Spec{Service: "svc", Context: dir, Dockerfile: df}, ContextOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if name != outsideDockerfile {
		t.Errorf("Dockerfile name = %q, want %q", name, outsideDockerfile)
	}
	files, _ := readTar(t, strings.NewReader(string(data)))
	if files[outsideDockerfile] != "FROM scratch\n" {
		t.Errorf("outside Dockerfile not packed: %v", keysOf(files))
	}
	// One in a subfolder keeps its path.
	writeFile(t, filepath.Join(dir, "docker", "Dockerfile"), "FROM scratch\n")
	_, name, _, err = buildContext(Spec{Service: "svc", Context: dir, Dockerfile: filepath.Join(dir, "docker", "Dockerfile")}, ContextOptions{})
	if err != nil || name != "docker/Dockerfile" {
		t.Errorf("name = %q, %v; want docker/Dockerfile", name, err)
	}
}

func TestContextErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		spec Spec
		want []string
	}{
		{Spec{Service: "svc", Context: dir}, []string{`service "svc"`, "Dockerfile", "not found", filepath.Join(dir, "Dockerfile")}},
		{Spec{Service: "svc", Context: filepath.Join(dir, "nope")}, []string{`service "svc"`, "not a folder"}},
		{Spec{Service: "svc", Context: "relative"}, []string{"absolute"}},
	}
	for _, tt := range tests {
		_, _, err := Context(tt.spec, ContextOptions{})
		if err == nil {
			t.Errorf("Context(%+v) succeeded", tt.spec)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		}
	}
	writeFile(t, filepath.Join(dir, ".dockerignore"), "[\n")
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\n")
	if _, _, err := Context(Spec{Service: "svc", Context: dir}, ContextOptions{}); err == nil || !strings.Contains(err.Error(), ".dockerignore") {
		t.Errorf("bad .dockerignore: err = %v, want one naming .dockerignore", err)
	}
}
