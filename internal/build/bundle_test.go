package build

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// sourcesProject writes a small Go service like devenv init --lang go's.
func sourcesProject(t *testing.T) Spec {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\nCOPY bin/app /app\n")
	writeFile(t, filepath.Join(dir, "go.mod"), "module example.com/app\n")
	writeFile(t, filepath.Join(dir, "main.go"), "package main\n\nfunc main() {}\n")
	writeFile(t, filepath.Join(dir, "build.sh"), "#!/bin/sh\ncommand -v go >/dev/null || exit 1\ngo build -o bin/app .\n")
	return Spec{Service: "app", Context: dir, Prebuild: []string{"./build.sh"}, Watch: []string{"**"}, Ignore: []string{"bin/**"}}
}

func TestSourcesHash(t *testing.T) {
	hash := func(spec Spec) string {
		t.Helper()
		h, err := SourcesHash(spec)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	tests := []struct {
		name   string
		change func(t *testing.T, spec *Spec)
		same   bool
	}{
		{"nothing", func(*testing.T, *Spec) {}, true},
		{"new mtimes (a clone)", func(t *testing.T, spec *Spec) {
			later := time.Now().Add(time.Hour)
			for _, f := range []string{"main.go", "go.mod", "Dockerfile", "build.sh"} {
				if err := os.Chtimes(filepath.Join(spec.Context, f), later, later); err != nil {
					t.Fatal(err)
				}
			}
		}, true},
		{"other mode", func(t *testing.T, spec *Spec) {
			if err := os.Chmod(filepath.Join(spec.Context, "main.go"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"outputs (ignored)", func(t *testing.T, spec *Spec) {
			writeFile(t, filepath.Join(spec.Context, "bin", "app"), "binary")
		}, true},
		{"a .git folder", func(t *testing.T, spec *Spec) {
			writeFile(t, filepath.Join(spec.Context, ".git", "HEAD"), "ref: refs/heads/main\n")
		}, true},
		{"same size, other content", func(t *testing.T, spec *Spec) {
			writeFile(t, filepath.Join(spec.Context, "main.go"), "package main\n\nfunc mian() {}\n")
		}, false},
		{"a new file", func(t *testing.T, spec *Spec) {
			writeFile(t, filepath.Join(spec.Context, "extra.go"), "package main\n")
		}, false},
		{"a file renamed", func(t *testing.T, spec *Spec) {
			if err := os.Rename(filepath.Join(spec.Context, "main.go"), filepath.Join(spec.Context, "app.go")); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"the Dockerfile", func(t *testing.T, spec *Spec) {
			writeFile(t, filepath.Join(spec.Context, "Dockerfile"), "FROM scratch\nCOPY bin/app /bin/app\n")
		}, false},
		{"a build arg", func(_ *testing.T, spec *Spec) { spec.Args = map[string]string{"V": "1"} }, false},
		{"the command", func(_ *testing.T, spec *Spec) { spec.Prebuild = []string{"sh", "build.sh"} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := sourcesProject(t)
			before := hash(spec)
			tt.change(t, &spec)
			if after := hash(spec); (after == before) != tt.same {
				t.Fatalf("hash changed = %v, want %v", after != before, !tt.same)
			}
		})
	}
}

func TestSourcesHashSameTreeElsewhere(t *testing.T) {
	a, b := sourcesProject(t), sourcesProject(t)
	ha, err := SourcesHash(a)
	if err != nil {
		t.Fatal(err)
	}
	hb, err := SourcesHash(b)
	if err != nil {
		t.Fatal(err)
	}
	if ha != hb {
		t.Fatalf("the same files in two folders hash differently: %s, %s", ha, hb)
	}
}

func TestToolchain(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		prebuild []string
		want     string
	}{
		{"none", nil, nil, ""},
		{"bare program", nil, []string{"go", "build", "."}, "go"},
		{"bare program, not go", nil, []string{"mvn", "-q", "package"}, "mvn"},
		{"go script", map[string]string{"go.mod": "module x\n", "build.sh": "#!/bin/sh\ngo build -o bin/x .\n"}, []string{"./build.sh"}, "go"},
		{"go script through sh -c", map[string]string{"go.mod": "module x\n", "build.sh": "go build .\n"}, []string{"sh", "-c", "./build.sh --fast"}, "go"},
		{"go named on the command line", map[string]string{"go.mod": "module x\n"}, []string{"sh", "-c", "CGO_ENABLED=0 go build ."}, "go"},
		{"go.mod, script without go", map[string]string{"go.mod": "module x\n", "build.sh": "docker run golang make\n"}, []string{"./build.sh"}, ""},
		{"go word without go.mod", map[string]string{"build.sh": "echo go team\n"}, []string{"./build.sh"}, ""},
		{"java script", map[string]string{"build.sh": "for tool in javac jar; do command -v \"$tool\"; done\n"}, []string{"./build.sh"}, "javac"},
		{"unknown script", map[string]string{"build.sh": "make all\n"}, []string{"./build.sh"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tt.files {
				writeFile(t, filepath.Join(dir, name), body)
			}
			if got := Toolchain(Spec{Service: "s", Context: dir, Prebuild: tt.prebuild}); got != tt.want {
				t.Fatalf("Toolchain = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNamesWord(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"go build .", true},
		{"command -v go >/dev/null", true},
		{"x\ngo", true},
		{"go.mod", false},
		{"./go", false},
		{"golang", false},
		{"cargo build", false},
		{"go-task", false},
		{"ergo go", true},
	}
	for _, tt := range tests {
		if got := namesWord(tt.text, "go"); got != tt.want {
			t.Errorf("namesWord(%q, go) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestMatching(t *testing.T) {
	records := []BundleRecord{
		{Project: "p", Services: map[string]BundledService{"a": {Sources: "h1", Ref: "devenv.local/p-a:1"}}},
		{Project: "p", Services: map[string]BundledService{"a": {Sources: "h2", Ref: "devenv.local/p-a:2"}, "b": {Sources: "h3", Ref: "devenv.local/p-b:3"}}},
		{Project: "p", Services: map[string]BundledService{"a": {Sources: "h1", Ref: "devenv.local/p-a:1"}}},
	}
	tests := []struct {
		service, sources string
		refs             []string
		recorded         bool
	}{
		{"a", "h1", []string{"devenv.local/p-a:1"}, true},
		{"a", "h2", []string{"devenv.local/p-a:2"}, true},
		{"a", "h9", nil, true},
		{"b", "h3", []string{"devenv.local/p-b:3"}, true},
		{"c", "h1", nil, false},
	}
	for _, tt := range tests {
		refs, recorded := Matching(records, tt.service, tt.sources)
		if !slices.Equal(refs, tt.refs) || recorded != tt.recorded {
			t.Errorf("Matching(%s, %s) = %v, %v; want %v, %v", tt.service, tt.sources, refs, recorded, tt.refs, tt.recorded)
		}
	}
}

func TestPrebuildCurrent(t *testing.T) {
	spec := sourcesProject(t)
	spec.Prebuild = []string{"sh", "-c", "mkdir -p bin && echo x > bin/app"}
	state, err := LoadState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	current := func() bool {
		t.Helper()
		ok, err := PrebuildCurrent(spec, state)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if current() {
		t.Fatal("current before any run")
	}
	if _, err := Prebuild(t.Context(), spec, nil, state); err != nil {
		t.Fatal(err)
	}
	if !current() {
		t.Fatal("not current after a run")
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(spec.Context, "main.go"), later, later); err != nil {
		t.Fatal(err)
	}
	if current() {
		t.Fatal("current after a touch (Prebuild would run)")
	}
}
