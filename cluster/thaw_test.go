package cluster

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/devenv-tool/devenv/internal/log"
)

func TestThawContainer(t *testing.T) {
	root := t.TempDir()
	id := "87400cf3b02002ab"
	write := func(rel, content string) string {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	frozenV1 := write("freezer/docker/"+id+"/kubelet.slice/pod/cri-containerd-x.scope/freezer.state", "FROZEN\n")
	thawedV1 := write("freezer/docker/"+id+"/freezer.state", "THAWED\n")
	frozenV2 := write("system.slice/docker-"+id+".scope/kubelet.slice/p/cgroup.freeze", "1\n")
	other := write("freezer/docker/someoneelse/freezer.state", "FROZEN\n")

	if n := thawContainer(root, id, log.Nop()); n != 2 {
		t.Errorf("thawed %d cgroups, want 2", n)
	}
	for path, want := range map[string]string{frozenV1: "THAWED", thawedV1: "THAWED\n", frozenV2: "0", other: "FROZEN\n"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Errorf("%s = %q, want %q", path, b, want)
		}
	}
	if n := thawContainer(root, "../..", log.Nop()); n != 0 {
		t.Errorf("a path-like id thawed %d cgroups", n)
	}
}
