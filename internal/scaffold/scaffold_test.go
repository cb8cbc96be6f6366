package scaffold

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/devenv-tool/devenv/internal/config"
)

var update = flag.Bool("update", false, "copy examples/cosmos's services into _files/cosmos")

// wantFiles is what each form writes, besides the sources below a service's src/.
var wantFiles = map[string][]string{
	ExampleCosmos: {
		"README.md", "devenv.yaml",
		"account/.dockerignore", "account/.gitignore", "account/Dockerfile", "account/README.md", "account/build.sh",
		"transfermoney/.dockerignore", "transfermoney/.gitignore", "transfermoney/Dockerfile", "transfermoney/README.md",
		"transfermoney/build.sh", "transfermoney/go.mod", "transfermoney/go.sum", "transfermoney/main.go",
		"e2e/transfer.sh",
	},
	LangGo: {
		"README.md", "devenv.yaml",
		"publisher/.dockerignore", "publisher/.gitignore", "publisher/Dockerfile", "publisher/README.md",
		"publisher/build.sh", "publisher/go.mod", "publisher/go.sum", "publisher/main.go", "publisher/main_test.go",
		"publisher/version.go",
	},
	LangJava: {
		"README.md", "devenv.yaml",
		"notes/.dockerignore", "notes/.gitignore", "notes/Dockerfile", "notes/README.md", "notes/build.sh",
		"notes/src/main/java/notes/Main.java", "notes/src/main/java/notes/Notes.java",
		"notes/src/main/java/notes/Version.java",
	},
}

// scaffold writes form into a new temporary folder and returns it.
func scaffold(t *testing.T, form, name string) string {
	t.Helper()
	fl, err := Files(form, Data{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), name)
	if err := Write(dir, fl); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestFormsWriteValidProjects(t *testing.T) {
	for _, tc := range []struct {
		form     string
		services []string
		kafka    bool
		h2       string
	}{
		{ExampleCosmos, []string{"account", "transfermoney"}, true, config.H2Memory},
		{LangGo, []string{"publisher"}, true, config.H2Memory},
		{LangJava, []string{"notes"}, false, config.H2Server},
	} {
		t.Run(tc.form, func(t *testing.T) {
			dir := scaffold(t, tc.form, "shop-"+tc.form)
			var got []string
			err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(dir, p)
				got = append(got, filepath.ToSlash(rel))
				info, err := d.Info()
				if err != nil {
					return err
				}
				if strings.HasSuffix(rel, ".sh") != (info.Mode().Perm()&0o100 != 0) {
					t.Errorf("%s: mode %v", rel, info.Mode())
				}
				if strings.HasSuffix(rel, ".tmpl") || strings.Contains(rel, "{{") {
					t.Errorf("%s: a template's name written", rel)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range wantFiles[tc.form] {
				if !slices.Contains(got, want) {
					t.Errorf("%s not written; wrote %v", want, got)
				}
			}
			for _, svc := range tc.services {
				if !slices.Contains(got, svc+"/README.md") {
					t.Errorf("service %s has no README.md", svc)
				}
			}

			cfg, err := config.Load(filepath.Join(dir, "devenv.yaml"))
			if err != nil {
				t.Fatalf("the written devenv.yaml does not validate: %v", err)
			}
			var names []string
			for _, s := range cfg.Services {
				names = append(names, s.Name)
				if want := filepath.Join(dir, s.Name); s.Context != want {
					t.Errorf("service %s: context %s, want %s", s.Name, s.Context, want)
				}
			}
			if cfg.Name != "shop-"+tc.form || !reflect.DeepEqual(names, tc.services) ||
				(cfg.Kafka != nil) != tc.kafka || cfg.H2.Mode != tc.h2 {
				t.Errorf("name %s, services %v, kafka %v, h2 %s", cfg.Name, names, cfg.Kafka != nil, cfg.H2.Mode)
			}
			readme, _ := os.ReadFile(filepath.Join(dir, "README.md"))
			if !strings.Contains(string(readme), "devenv up") || !strings.Contains(string(readme), "watch it update") {
				t.Errorf("README.md does not say devenv up and what to try:\n%s", readme)
			}
		})
	}
}

// TestCosmosMatchesRoot checks that --example cosmos describes the same
// environment as the repository's own devenv.yaml, but for the project
// name and the services' folders.
func TestCosmosMatchesRoot(t *testing.T) {
	dir := scaffold(t, ExampleCosmos, "cosmos")
	mine, err := config.Load(filepath.Join(dir, "devenv.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := config.Load("../../devenv.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if mine.Namespace != "cosmos" || mine.Namespace != root.Namespace || mine.H2.Mode != root.H2.Mode ||
		mine.Cluster != root.Cluster {
		t.Errorf("namespace %s, h2 %s, cluster %+v; root: %s, %s, %+v", mine.Namespace, mine.H2.Mode, mine.Cluster,
			root.Namespace, root.H2.Mode, root.Cluster)
	}
	k1, k2 := *mine.Kafka, *root.Kafka
	k1.Pos, k2.Pos = config.Pos{}, config.Pos{}
	for i := range k1.Topics {
		k1.Topics[i].Pos = config.Pos{}
	}
	for i := range k2.Topics {
		k2.Topics[i].Pos = config.Pos{}
	}
	if !reflect.DeepEqual(k1, k2) {
		t.Errorf("kafka %+v, root %+v", k1, k2)
	}
	if len(mine.Services) != len(root.Services) {
		t.Fatalf("%d services, root %d", len(mine.Services), len(root.Services))
	}
	for i, s := range mine.Services {
		r := root.Services[i]
		if s.Name != r.Name || s.Port != r.Port || !reflect.DeepEqual(s.Prebuild, r.Prebuild) ||
			!reflect.DeepEqual(s.Args, r.Args) || !reflect.DeepEqual(s.Ignore, r.Ignore) || s.ProbePath != r.ProbePath || s.Replicas != r.Replicas ||
			!reflect.DeepEqual(s.Env, r.Env) || s.Resources != r.Resources || !reflect.DeepEqual(s.Ports, r.Ports) ||
			filepath.Base(s.Context) != filepath.Base(r.Context) {
			t.Errorf("service %s differs from the root's %s:\n%+v\n%+v", s.Name, r.Name, s, r)
		}
		if values(s.Config) != values(r.Config) {
			t.Errorf("service %s: config %s, root %s", s.Name, values(s.Config), values(r.Config))
		}
		if secrets(s.Secrets) != secrets(r.Secrets) {
			t.Errorf("service %s: secrets %s, root %s", s.Name, secrets(s.Secrets), secrets(r.Secrets))
		}
	}
	if len(mine.Tests) != len(root.Tests) {
		t.Fatalf("%d tests, root %d", len(mine.Tests), len(root.Tests))
	}
	for i, m := range mine.Tests {
		r := root.Tests[i]
		if m.Name != r.Name || !reflect.DeepEqual(m.Command, r.Command) || m.Shell != r.Shell ||
			!reflect.DeepEqual(m.Services, r.Services) || m.Timeout != r.Timeout || !reflect.DeepEqual(m.Env, r.Env) ||
			filepath.Base(m.Dir) != filepath.Base(r.Dir) {
			t.Errorf("test %s differs from the root's %s:\n%+v\n%+v", m.Name, r.Name, m, r)
		}
	}
}

func values(m map[string]config.Value) string {
	var b strings.Builder
	for _, k := range config.SortedKeys(m) {
		b.WriteString(k + "=" + m[k].Value + " ")
	}
	return b.String()
}

func secrets(m map[string]config.Secret) string {
	var b strings.Builder
	for _, k := range config.SortedKeys(m) {
		s := m[k]
		b.WriteString(k + "=" + s.Env + "|" + s.Default + " ")
	}
	return b.String()
}

// TestCosmosCopy checks that _files/cosmos holds examples/cosmos's two
// services and its e2e test as they are (go.mod stored as go.mod.tmpl),
// plus a README.md for each service. go test ./internal/scaffold -run TestCosmosCopy -update copies them.
func TestCosmosCopy(t *testing.T) {
	for _, svc := range []string{"account", "transfermoney", "e2e"} {
		src := filepath.Join("..", "..", "examples", "cosmos", svc)
		dst := filepath.Join("_files", "cosmos", svc)
		seen := map[string]bool{"README.md": true}
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			if d.IsDir() {
				if rel == "bin" || rel == "target" { // build outputs
					return filepath.SkipDir
				}
				return nil
			}
			stored := rel
			if d.Name() == "go.mod" {
				stored += templateSuffix
			}
			seen[filepath.ToSlash(stored)] = true
			want, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got, err := os.ReadFile(filepath.Join(dst, stored))
			if *update && string(got) != string(want) {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, stored)), 0o755); err != nil {
					return err
				}
				return os.WriteFile(filepath.Join(dst, stored), want, 0o644)
			}
			if err != nil || string(got) != string(want) {
				t.Errorf("%s differs from %s (go test ./internal/scaffold -run TestCosmosCopy -update copies it)", filepath.Join(dst, stored), p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		_ = filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dst, p)
			if !seen[filepath.ToSlash(rel)] {
				if *update {
					return os.Remove(p)
				}
				t.Errorf("%s is not in %s (go test ./internal/scaffold -run TestCosmosCopy -update removes it)", p, src)
			}
			return nil
		})
	}
}

func TestGoSkeletonBuilds(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not on PATH")
	}
	dir := filepath.Join(scaffold(t, LangGo, "gosk"), "publisher")
	for _, args := range [][]string{{"build", "./..."}, {"vet", "./..."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s in the Go skeleton: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	cmd := exec.Command("./build.sh")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "bin", "publisher")); err != nil {
		t.Errorf("build.sh wrote no bin/publisher: %v", err)
	}
}

func TestJavaSkeletonBuilds(t *testing.T) {
	for _, tool := range []string{"javac", "jar"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not on PATH", tool)
		}
	}
	if _, err := os.Stat("/usr/share/java/h2.jar"); err != nil {
		t.Skip("no /usr/share/java/h2.jar (apt-get install libh2-java): build.sh would download H2")
	}
	dir := filepath.Join(scaffold(t, LangJava, "javask"), "notes")
	cmd := exec.Command("./build.sh")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, out)
	}
	for _, f := range []string{"target/notes.jar", "target/h2.jar"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("build.sh wrote no %s: %v", f, err)
		}
	}
}

func TestWriteRefusesToOverwrite(t *testing.T) {
	fl, err := Files(LangGo, Data{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, p := range []string{"README.md", "publisher/main.go"} {
		_ = os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte("mine\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err = Write(dir, fl)
	var ce *ClashError
	if !errors.As(err, &ce) || !errors.Is(err, ErrExists) || !reflect.DeepEqual(ce.Paths, []string{"README.md", "publisher/main.go"}) {
		t.Fatalf("err %v", err)
	}
	for _, want := range []string{"README.md", "publisher/main.go", "nothing written"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	// Nothing else was written, and the clashing files are untouched.
	if _, err := os.Stat(filepath.Join(dir, "devenv.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("devenv.yaml written: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "README.md")); string(b) != "mine\n" {
		t.Errorf("README.md overwritten: %q", b)
	}
	// A file where a folder should be is a clash too.
	dir2 := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir2, "publisher"), nil, 0o644)
	if err := Write(dir2, fl); !errors.As(err, &ce) || len(ce.Paths) != len(fl)-2 {
		t.Errorf("publisher is a file: %v", err)
	}
}

func TestProjectName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"shop", "shop"},
		{"My Shop", "my-shop"},
		{"__work.shop__", "work-shop"},
		{"2048", "2048"},
		{"---", ""},
		{strings.Repeat("a", 62) + "-b", strings.Repeat("a", 62)},
	} {
		if got := ProjectName(tc.in); got != tc.want {
			t.Errorf("ProjectName(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if tc.want != "" {
			if err := CheckName(tc.want); err != nil {
				t.Error(err)
			}
		}
	}
	if err := CheckName("Bad_Name"); err == nil {
		t.Error("Bad_Name accepted")
	}
	if _, err := Files("rust", Data{Name: "x"}); err == nil {
		t.Error("unknown form accepted")
	}
}
