package kindnode

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/devenv-tool/devenv/internal/images/standin"
)

func TestStandIn(t *testing.T) {
	si := StandIn()
	if si.Name != "kind-node" || si.Ref != "devenv.local/kind-node:v1.37.2" || si.For != "kindest/node" {
		t.Errorf("StandIn() = %q %q %q", si.Name, si.Ref, si.For)
	}
	if !slices.Equal(si.Needs, []string{"debian-base"}) {
		t.Errorf("Needs = %q, want [debian-base]", si.Needs)
	}
	var cmds []string
	for _, p := range si.Prereqs {
		cmds = append(cmds, p.Command)
	}
	for _, want := range []string{"go", "gcc", "/usr/include/seccomp.h", "pkg-config", "debootstrap"} {
		if !slices.Contains(cmds, want) {
			t.Errorf("Prereqs lack %s: %q", want, cmds)
		}
	}
}

func TestRecipeCoversVersionsAndFiles(t *testing.T) {
	parts, err := Recipe()
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(parts, "\n")
	for _, want := range []string{KubernetesVersion, ContainerdVersion, RuncVersion, CrictlVersion, CNIPluginsVersion,
		EtcdVersion, CoreDNSVersion, KindVersion, "builder=" + builderRevision, "setup.sh=", "entrypoint=", "10-devenv-bridge.conflist="} {
		if !strings.Contains(joined, want) {
			t.Errorf("recipe lacks %q:\n%s", want, joined)
		}
	}
	again, _ := Recipe()
	if standin.Hash(parts) != standin.Hash(again) {
		t.Error("recipe hash is not stable")
	}
}

func TestEmbeddedFiles(t *testing.T) {
	var conf struct {
		Plugins []struct {
			Type string
			IPAM struct {
				Ranges [][]struct{ Subnet string }
			}
		}
	}
	if err := json.Unmarshal(mustFile("10-devenv-bridge.conflist"), &conf); err != nil {
		t.Fatalf("conflist is not JSON: %v", err)
	}
	if len(conf.Plugins) != 2 || conf.Plugins[0].Type != "bridge" || conf.Plugins[0].IPAM.Ranges[0][0].Subnet != "10.244.0.0/24" {
		t.Errorf("unexpected conflist: %+v", conf)
	}
	for _, f := range []string{"entrypoint", "iptables-wrapper", "setup.sh"} {
		if !bytes.HasPrefix(mustFile(f), []byte("#!")) {
			t.Errorf("%s has no #! line", f)
		}
	}
	if !bytes.Contains(mustFile("entrypoint"), []byte("exec /usr/local/bin/entrypoint-kind")) {
		t.Error("entrypoint does not hand over to kind's entrypoint")
	}
	if !bytes.Contains(mustFile("etcd-main.go.txt"), []byte("etcdmain.Main(os.Args)")) {
		t.Error("etcd wrapper does not call etcdmain")
	}
}

func TestStagingModules(t *testing.T) {
	dir := t.TempDir()
	gomod := filepath.Join(dir, "go.mod")
	content := `module k8s.io/kubernetes

require k8s.io/api v0.0.0

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/sample-controller => ./staging/src/k8s.io/sample-controller
	github.com/x/y => github.com/x/z v1.0.0
)

replace k8s.io/cri-api => ./staging/src/k8s.io/cri-api
`
	if err := os.WriteFile(gomod, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := stagingModules(gomod)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"api", "sample-controller", "cri-api"}; !slices.Equal(got, want) {
		t.Errorf("stagingModules = %q, want %q", got, want)
	}
	if err := os.WriteFile(gomod, []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := stagingModules(gomod); err == nil || !strings.Contains(err.Error(), "not a Kubernetes source tree") {
		t.Errorf("want a not-a-source-tree error, got %v", err)
	}
}

func TestVersionLDFlags(t *testing.T) {
	ld := versionLDFlags("v1.37.2", "2026-01-02T03:04:05Z")
	for _, want := range []string{
		"-X k8s.io/component-base/version.gitVersion=v1.37.2",
		"-X k8s.io/client-go/pkg/version.gitMinor=37",
		"-X k8s.io/component-base/version.gitMajor=1",
		"-X k8s.io/component-base/version.buildDate=2026-01-02T03:04:05Z",
	} {
		if !strings.Contains(ld, want) {
			t.Errorf("ldflags lack %q: %s", want, ld)
		}
	}
}

func TestContainerdConfigAndKubeletDefaults(t *testing.T) {
	cfg := "version = 3\n[plugins]\n  sandbox_image = \"registry.k8s.io/pause:3.10\"\n  restrict_oom_score_adj = false\n"
	got, err := containerdConfig([]byte(cfg), "registry.k8s.io/pause:3.10.2")
	if err != nil {
		t.Fatal(err)
	}
	want := "version = 3\n[plugins]\n  sandbox_image = \"registry.k8s.io/pause:3.10.2\"\n  restrict_oom_score_adj = true\n"
	if string(got) != want {
		t.Errorf("containerdConfig =\n%s\nwant\n%s", got, want)
	}
	if _, err := containerdConfig([]byte("version = 3\n"), "p"); err == nil || !strings.Contains(err.Error(), "sandbox_image") {
		t.Errorf("want an error naming the missing line, got %v", err)
	}
	k, err := kubeletDefaults([]byte("KUBELET_EXTRA_ARGS=--runtime-cgroups=/system.slice/containerd.service\n"))
	if err != nil {
		t.Fatal(err)
	}
	if string(k) != "KUBELET_EXTRA_ARGS=--runtime-cgroups=/system.slice/containerd.service --fail-cgroupv1=false\n" {
		t.Errorf("kubeletDefaults = %q", k)
	}
}

func TestKindFilesFromModule(t *testing.T) {
	dir := kindModuleDir(t)
	files, err := kindFiles(dir, "registry.k8s.io/pause:3.10.2")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]tarEntry{}
	for _, f := range files {
		byName[f.name] = f
	}
	if e, ok := byName["usr/local/bin/entrypoint-kind"]; !ok || e.mode != 0o755 {
		t.Errorf("kind's entrypoint not renamed to entrypoint-kind with mode 0755: %+v", e)
	}
	if _, ok := byName["usr/local/bin/entrypoint"]; ok {
		t.Error("kind's entrypoint would overwrite devenv's prelude")
	}
	if e := byName["kind/bin/mount-product-files.sh"]; e.mode != 0o755 {
		t.Errorf("mount-product-files.sh mode = %o", e.mode)
	}
	if c := string(byName["etc/containerd/config.toml"].data); !strings.Contains(c, `sandbox_image = "registry.k8s.io/pause:3.10.2"`) || !strings.Contains(c, "restrict_oom_score_adj = true") {
		t.Errorf("containerd config not adjusted:\n%s", c)
	}
	if k := string(byName["etc/default/kubelet"].data); !strings.Contains(k, "--fail-cgroupv1=false") {
		t.Errorf("kubelet defaults not adjusted: %s", k)
	}
}

// kindModuleDir finds sigs.k8s.io/kind in the module cache (it is a dependency of devenv).
func kindModuleDir(t *testing.T) string {
	t.Helper()
	b := &builder{env: &standin.Env{}, root: t.TempDir()}
	m, err := b.moduleDir(context.Background(), "sigs.k8s.io/kind@"+KindVersion)
	if err != nil {
		t.Skipf("kind module not available: %v", err)
	}
	return m.Dir
}

func TestImagePlan(t *testing.T) {
	b := &builder{env: &standin.Env{}, root: t.TempDir()}
	refs := []string{
		"registry.k8s.io/kube-apiserver:v1.37.2", "registry.k8s.io/kube-controller-manager:v1.37.2",
		"registry.k8s.io/kube-scheduler:v1.37.2", "registry.k8s.io/kube-proxy:v1.37.2",
		"registry.k8s.io/coredns/coredns:v1.14.6", "registry.k8s.io/pause:3.10.2", "registry.k8s.io/etcd:3.7.0-0",
	}
	plan, err := b.planImages(refs)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != len(refs) {
		t.Fatalf("plan has %d images, want %d", len(plan), len(refs))
	}
	for _, p := range plan {
		switch imageName(p.ref) {
		case "kube-proxy":
			if !strings.HasPrefix(p.dockerfile, "FROM devenv.local/debian-base:bookworm") {
				t.Errorf("kube-proxy Dockerfile: %s", p.dockerfile)
			}
		case "coredns":
			if p.dockerfile != scratchDockerfile("/coredns") {
				t.Errorf("coredns Dockerfile: %s", p.dockerfile)
			}
		default:
			if !strings.HasPrefix(p.dockerfile, "FROM scratch\n") {
				t.Errorf("%s Dockerfile: %s", p.ref, p.dockerfile)
			}
		}
	}
	if _, err := b.planImages([]string{"registry.k8s.io/unknown:v1"}); err == nil || !strings.Contains(err.Error(), "registry.k8s.io/unknown:v1") {
		t.Errorf("want an error naming the unknown image, got %v", err)
	}
}

func TestCachedStepResumesAndCleansUp(t *testing.T) {
	b := &builder{env: &standin.Env{}, root: t.TempDir()}
	out := filepath.Join(b.root, "out")
	runs := 0
	write := func(context.Context) error {
		runs++
		return os.WriteFile(out, []byte("x"), 0o644)
	}
	ctx := context.Background()
	for range 2 {
		if err := b.cached(ctx, "s", "step", []string{"a"}, []string{out}, write); err != nil {
			t.Fatal(err)
		}
	}
	if runs != 1 {
		t.Errorf("step ran %d times with the same inputs, want 1", runs)
	}
	if err := b.cached(ctx, "s", "step", []string{"b"}, []string{out}, write); err != nil {
		t.Fatal(err)
	}
	if runs != 2 {
		t.Errorf("step did not rerun after its inputs changed")
	}
	failing := func(context.Context) error {
		_ = os.WriteFile(out, []byte("partial"), 0o644)
		return errors.New("boom")
	}
	if err := b.cached(ctx, "s", "step", []string{"c"}, []string{out}, failing); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("want the step's error, got %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("partial output left behind after a failure: %v", err)
	}
	if err := b.cached(ctx, "s", "step", []string{"a"}, []string{out}, write); err != nil || runs != 3 {
		t.Errorf("step after a failure: err %v, runs %d (want a rerun)", err, runs)
	}
}

func TestWriteTar(t *testing.T) {
	src := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(src, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err := writeTar(&buf, []tarEntry{
		{name: "usr/local/bin/x", mode: 0o755, src: src},
		{name: "/usr/local/y", mode: 0o644, data: []byte("data")},
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	var got []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got = append(got, h.Name+" "+string(b))
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s owned by %d:%d", h.Name, h.Uid, h.Gid)
		}
	}
	want := []string{"usr/ ", "usr/local/ ", "usr/local/bin/ ", "usr/local/bin/x binary", "usr/local/y data"}
	if !slices.Equal(got, want) {
		t.Errorf("tar = %q, want %q", got, want)
	}
}
