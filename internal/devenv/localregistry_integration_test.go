package devenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/testenv"
	"github.com/devenv-tool/devenv/project"
	"github.com/devenv-tool/devenv/registry"
)

// TestIntegrationLocalRegistry runs a project with registry: local on the
// kind cluster devenv creates: its registry container runs beside the
// cluster, the pods run images pulled from it (none side-loaded), the
// KEP-1755 ConfigMap names it, a second up uploads nothing, and down
// removes the container.
func TestIntegrationLocalRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	testenv.RequireImages(t, docker)
	testenv.RequireImage(t, docker, testenv.RegistryImage, "registry stand-in")
	tmp := t.TempDir()
	testenv.GoService(t, ctx, "./testdata/h2probe", filepath.Join(tmp, "probe"), "probe")
	name := testenv.Name("it-reg-")
	file := filepath.Join(tmp, "devenv.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf("name: %s\nregistry: local\nservices:\n  probe: {context: ./probe, port: 8080}\n", name)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	out := &testenv.Log{TB: t}
	opts := Options{Kubeconfig: filepath.Join(tmp, "kubeconfig"), Log: log.New(out, true), RolloutTimeout: 4 * time.Minute, PrivilegedShim: true}
	downed := false
	t.Cleanup(func() {
		if !downed {
			if err := Down(context.Background(), cfg, DownOptions{Options: opts}); err != nil {
				t.Errorf("down: %v", err)
			}
		}
		testenv.RemoveImages(t, docker, build.LabelProject+"="+name)
	})
	env, err := Up(ctx, cfg, opts)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	env.Close()
	// On the cluster it created, up waited for the controller manager as a
	// step of its own, and meanwhile the node pulled the image.
	for _, want := range []string{"✓ cluster controllers", "ahead of their pods, the nodes pulled " + env.Images["probe"]} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the first up's output has no %q", want)
		}
	}
	reg := project.ID{Name: name}.ContainerName(componentRegistry)
	host := env.Config.Registry.Host
	if !strings.HasPrefix(host, "localhost:") {
		t.Fatalf("the local registry's host is %q", host)
	}
	c := env.Cluster
	pods, err := c.Client.CoreV1().Pods(cfg.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=probe"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("probe pods: %v", err)
	}
	// The images keep their devenv.local names (the same on every
	// machine, so bundles carry them); the node pulled them from the
	// registry container: its access log has the node's manifest request.
	img := pods.Items[0].Spec.Containers[0].Image
	if !strings.HasPrefix(img, project.Registry+"/"+name) {
		t.Errorf("the pod runs %s", img)
	}
	repo, tag, _ := strings.Cut(strings.TrimPrefix(img, project.Registry+"/"), ":")
	pulled := false
	logs := testenv.DockerCLI(t, "logs", reg)
	for _, l := range strings.Split(logs, "\n") {
		// containerd's requests carry its user agent; devenv's pushes and
		// checks carry go-containerregistry's.
		if strings.Contains(l, "/v2/"+repo+"/manifests/") && strings.Contains(l, "containerd") {
			pulled = true
		}
	}
	if !pulled {
		t.Errorf("the node did not pull %s (tag %s) from the registry:\n%s", img, tag, logs)
	}
	cm, err := c.Client.CoreV1().ConfigMaps(registry.HostingNamespace).Get(ctx, registry.HostingName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the KEP-1755 ConfigMap: %v", err)
	}
	if h, err := registry.ParseHostingConfigMap(cm); err != nil || h.Host != host {
		t.Errorf("the KEP-1755 ConfigMap names %+v (%v), want host %s", h, err, host)
	}
	if n := (&testenv.Registry{Name: reg}).Uploads(t); n == 0 {
		t.Error("the first up uploaded nothing to the local registry")
	}

	// A second up: same registry port, nothing uploaded.
	before := (&testenv.Registry{Name: reg}).Uploads(t)
	env, err = Up(ctx, cfg, opts)
	if err != nil {
		t.Fatalf("second up: %v", err)
	}
	env.Close()
	if env.Config.Registry.Host != host {
		t.Errorf("the registry moved from %s to %s", host, env.Config.Registry.Host)
	}
	if n := (&testenv.Registry{Name: reg}).Uploads(t) - before; n != 0 {
		t.Errorf("the second up uploaded %d blobs", n)
	}

	downed = true
	if err := Down(ctx, cfg, DownOptions{Options: opts}); err != nil {
		t.Fatalf("down: %v", err)
	}
	if _, err := docker.ContainerInspect(ctx, reg, client.ContainerInspectOptions{}); err == nil {
		t.Errorf("the registry container %s is still there after down", reg)
	}
}
