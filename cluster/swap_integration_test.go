package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dockerx"
)

// derivedImage builds FROM base with extra Dockerfile lines.
func derivedImage(t *testing.T, docker *client.Client, base, lines string) string {
	t.Helper()
	return derivedImageWith(t, docker, base, lines, nil)
}

// derivedImageWith builds FROM base with extra Dockerfile lines and
// executable files in the build context.
func derivedImageWith(t *testing.T, docker *client.Client, base, lines string, files map[string][]byte) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	df := []byte("FROM " + base + "\n" + lines + "\n")
	_ = tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(df))})
	_, _ = tw.Write(df)
	for name, b := range files {
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(b))})
		_, _ = tw.Write(b)
	}
	_ = tw.Close()
	ref := "devenv.local/it-echo:" + randSuffix()
	res, err := docker.ImageBuild(context.Background(), &buf, client.ImageBuildOptions{Tags: []string{ref}, Remove: true, Labels: map[string]string{testLabel: testValue}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := dockerx.ReadStream(res.Body, dockerx.StreamOptions{Out: io.Discard}); err != nil {
		t.Fatalf("building %s: %v", ref, err)
	}
	return ref
}

func TestIntegrationSwapImages(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs Docker and kind")
	}
	c := sharedCluster(t)
	docker := testDocker(t)
	base := testImage(t, docker)
	v2 := derivedImage(t, docker, base, "ENV ECHO_VERSION=two")
	crash := derivedImage(t, docker, base, `ENTRYPOINT ["/echo", "crash"]`)
	ctx := context.Background()
	for _, img := range []string{base, v2, crash} {
		if _, err := c.LoadImage(ctx, docker, img); err != nil {
			t.Fatal(err)
		}
	}
	ns := "it-swap"
	if _, err := c.Apply(ctx, objs(t, `
apiVersion: v1
kind: Namespace
metadata: {name: `+ns+`}
---`+echoApp(ns, "echo", base)), ApplyOptions{Selector: map[string]string{"devenv.dev/project": "it-swap"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRollout(ctx, ns, "echo", 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	state := func() (pods []string, image string, replicaSets int, paused bool) {
		t.Helper()
		pl, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=echo"})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pl.Items {
			if p.DeletionTimestamp == nil {
				pods = append(pods, p.Name+"="+p.Spec.Containers[0].Image)
			}
		}
		rl, err := c.Client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=echo"})
		if err != nil {
			t.Fatal(err)
		}
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "echo", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return pods, d.Spec.Template.Spec.Containers[0].Image, len(rl.Items), d.Spec.Paused
	}
	pods0, _, rs0, _ := state()
	if len(pods0) != 1 {
		t.Fatalf("pods before the swap: %v", pods0)
	}
	podName, _, _ := strings.Cut(pods0[0], "=")

	start := time.Now()
	if err := c.SwapImages(ctx, ns, "echo", map[string]string{"echo": v2}, time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("swap took %s", time.Since(start))
	time.Sleep(2 * time.Second) // room for a deployment controller reaction, if any
	pods, image, rs, paused := state()
	if want := []string{podName + "=" + v2}; !slices.Equal(pods, want) || image != v2 || rs != rs0 || paused {
		t.Errorf("after the swap: pods %v image %s ReplicaSets %d paused %v; want pods %v, image %s, %d ReplicaSets, not paused",
			pods, image, rs, paused, want, v2, rs0)
	}
	if out := fetch(t, c, base, ns, "http://echo."+ns+".svc.cluster.local:80/"); !strings.Contains(out, "version two") {
		t.Errorf("after the swap the service answers %q, want version two", out)
	}

	// The same images again: nothing to do.
	if err := c.SwapImages(ctx, ns, "echo", map[string]string{"echo": v2}, time.Minute); err != nil {
		t.Errorf("swapping to the running images: %v", err)
	}

	// A version that crashes: reported, and the previous one serves again.
	err := c.SwapImages(ctx, ns, "echo", map[string]string{"echo": crash}, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "crash") || !strings.Contains(err.Error(), "previous version is serving again") {
		t.Errorf("crashing version: err = %v, want the crash and the way back reported", err)
	}
	t.Logf("crashing version: %v", err)
	pods, image, rs, paused = state()
	if want := []string{podName + "=" + v2}; !slices.Equal(pods, want) || image != v2 || rs != rs0 || paused {
		t.Errorf("after the failed swap: pods %v image %s ReplicaSets %d paused %v; want pods %v, image %s", pods, image, rs, paused, want, v2)
	}
	if err := c.WaitRollout(ctx, ns, "echo", time.Minute); err != nil {
		t.Errorf("after the failed swap the deployment is not ready: %v", err)
	}
	if out := fetch(t, c, base, ns, "http://echo."+ns+".svc.cluster.local:80/"); !strings.Contains(out, "version two") {
		t.Errorf("after the failed swap the service answers %q, want version two", out)
	}

	if err := c.SwapImages(ctx, ns, "absent", map[string]string{"echo": v2}, time.Minute); !errors.Is(err, ErrNoSwap) {
		t.Errorf("missing deployment: err = %v, want ErrNoSwap", err)
	}
	if err := c.SwapImages(ctx, ns, "echo", map[string]string{"nope": v2}, time.Minute); !errors.Is(err, ErrNoSwap) {
		t.Errorf("unknown container: err = %v, want ErrNoSwap", err)
	}
}
