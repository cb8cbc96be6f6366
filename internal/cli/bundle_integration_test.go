package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/devenv-tool/devenv/internal/dirs"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/images/java"
	"github.com/devenv-tool/devenv/internal/testenv"
	"github.com/devenv-tool/devenv/project"
)

// TestIntegrationBundleRoundTrip: a --lang java project (node image, H2
// server, a JRE base, one service) under a unique name is brought up, then
// bundled; its service image is removed from Docker (not the shared
// stand-ins, not the node image), the bundle is loaded, the image is back
// with the same ID, and a second up --no-watch is ready without building
// it. The figures (bundle size, save and load times) go to the test log.
func TestIntegrationBundleRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	testenv.RequireImages(t, docker)
	testenv.RequireImage(t, docker, java.H2Ref, "H2 stand-in")
	if _, err := docker.ImageInspect(ctx, "eclipse-temurin:17-jre"); err != nil {
		testenv.RequireImage(t, docker, java.JRERef, "JRE stand-in")
	}
	t.Setenv(dirs.StateEnv, t.TempDir())
	forgetLoadedNotes(t)

	tmp := t.TempDir()
	dir := filepath.Join(tmp, "project")
	name := testenv.Name("bundle-")
	devenv := func(ctx context.Context, args ...string) (int, string, string) { return runDevenv(ctx, t, args...) }
	if code, _, errOut := devenv(ctx, "init", "--lang", "java", "--name", name, dir); code != ExitOK {
		t.Fatalf("init: exit %d: %s", code, errOut)
	}
	cfgArgs := []string{"-f", filepath.Join(dir, "devenv.yaml"), "--kubeconfig", filepath.Join(tmp, "kubeconfig")}
	t.Cleanup(func() {
		if code, _, errOut := devenv(context.Background(), append([]string{"down"}, cfgArgs...)...); code != ExitOK {
			t.Errorf("down: exit %d: %s", code, errOut)
		}
		testenv.RemoveImages(t, docker, project.LabelProject+"="+name)
	})
	if code, _, errOut := devenv(ctx, append([]string{"up", "--no-watch"}, cfgArgs...)...); code != ExitOK {
		t.Fatalf("up --no-watch: exit %d: %s", code, errOut)
	}

	file := filepath.Join(tmp, "room.tar.gz")
	code, out, errOut := devenv(ctx, append([]string{"bundle", "-o", "json", file}, cfgArgs[:2]...)...)
	if code != ExitOK {
		t.Fatalf("bundle: exit %d: %s", code, errOut)
	}
	var bundle bundleResult
	if err := json.Unmarshal([]byte(out), &bundle); err != nil {
		t.Fatalf("bundle -o json: %v\n%s", err, out)
	}
	roles := map[string]int{}
	ids := map[string]string{} // service image -> ID before the round trip
	for _, im := range bundle.Images {
		roles[im.Role]++
		if im.Role != "service" {
			continue
		}
		if im.Built {
			t.Errorf("bundle built %s again right after up", im.Ref)
		}
		ins, err := docker.ImageInspect(ctx, im.Ref)
		if err != nil {
			t.Fatal(err)
		}
		ids[im.Ref] = ins.ID
	}
	if roles["node"] != 1 || roles["h2"] != 1 || roles["base"] != 1 || roles["service"] != 1 {
		t.Errorf("bundle holds %v; want one node, h2, base and service image", roles)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Size() != bundle.Size {
		t.Fatalf("bundle file: %v, size %d; -o json says %d", err, fi.Size(), bundle.Size)
	}

	// Only the project's service image goes: the stand-ins and the node
	// image are shared with every other test.
	testenv.RemoveImages(t, docker, project.LabelProject+"="+name)
	for ref := range ids {
		if _, err := docker.ImageInspect(ctx, ref); !cerrdefs.IsNotFound(err) {
			t.Fatalf("%s is still in Docker after removing it (%v)", ref, err)
		}
	}

	code, out, errOut = devenv(ctx, "images", "load", "-o", "json", file)
	if code != ExitOK {
		t.Fatalf("images load: exit %d: %s", code, errOut)
	}
	var load imagesLoadResult
	if err := json.Unmarshal([]byte(out), &load); err != nil {
		t.Fatalf("images load -o json: %v\n%s", err, out)
	}
	for ref, id := range ids {
		ins, err := docker.ImageInspect(ctx, ref)
		if err != nil {
			t.Fatalf("%s is not back after the load: %v", ref, err)
		}
		if ins.ID != id {
			t.Errorf("%s came back as %s, was %s", ref, ins.ID, id)
		}
	}

	t0 := time.Now()
	code, _, errOut = devenv(ctx, append([]string{"up", "--no-watch"}, cfgArgs...)...)
	if code != ExitOK {
		t.Fatalf("up --no-watch after the load: exit %d: %s", code, errOut)
	}
	upAfter := time.Since(t0)
	for ref := range ids {
		if !strings.Contains(errOut, "image "+ref+" unchanged") {
			t.Errorf("up after the load did not find %s as it was (built it again?)", ref)
		}
	}
	if strings.Contains(errOut, "trying to pull") || strings.Contains(errOut, "cannot be pulled") {
		t.Errorf("up after the load tried a registry:\n%s", errOut)
	}
	t.Logf("bundle %s: %d images, %.1f MB, saved in %.1fs (bundle verb %.1fs); loaded in %.1fs; up after the load %s",
		filepath.Base(file), len(bundle.Images), float64(bundle.Size)/1e6, bundle.SaveSeconds, bundle.Seconds, load.Seconds, upAfter.Round(100*time.Millisecond))
}
