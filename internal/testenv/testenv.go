// Package testenv holds what devenv's integration tests and benchmarks
// share: copying the example, a Service's HTTP answer through the API
// server's proxy, polling with a bound, and the check that the stand-in node
// image exists.
package testenv

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/cluster"
)

// RemoveImages removes the images carrying label ("key=value"), newest
// first so that children go before their parents; PruneChildren takes
// their untagged parents (build steps) along. Tests and benchmarks call it
// on their project's images when they end.
func RemoveImages(tb testing.TB, docker *client.Client, label string) {
	ctx := context.Background()
	list, err := docker.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("label", label)})
	if err != nil {
		tb.Errorf("listing test images: %v", err)
		return
	}
	items := list.Items
	slices.SortFunc(items, func(a, b image.Summary) int { return cmp.Compare(b.Created, a.Created) })
	for _, img := range items {
		if _, err := docker.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
			tb.Logf("removing %s: %v", img.ID, err)
		}
	}
}

// NodeImage is the stand-in node image integration tests run on.
const NodeImage = "devenv.local/kind-node:v1.37.2"

// RequireImages skips tb when the stand-in node image is missing, or fails
// it when DEVENV_REQUIRE_IMAGES is set (as it is in CI).
func RequireImages(tb testing.TB, docker *client.Client) {
	tb.Helper()
	if _, err := docker.ImageInspect(context.Background(), NodeImage); err != nil {
		if os.Getenv("DEVENV_REQUIRE_IMAGES") != "" {
			tb.Fatalf("the stand-in node image %s is missing (%v): run devenv images build", NodeImage, err)
		}
		tb.Skipf("the stand-in node image %s is missing: run devenv images build", NodeImage)
	}
}

// RequireImage fails (with DEVENV_REQUIRE_IMAGES set) or skips the test
// when image ref is not in Docker; what names the image in the message.
func RequireImage(tb testing.TB, docker *client.Client, ref, what string) {
	tb.Helper()
	if _, err := docker.ImageInspect(context.Background(), ref); err != nil {
		if os.Getenv("DEVENV_REQUIRE_IMAGES") != "" {
			tb.Fatalf("the %s image %s is missing (%v): run devenv images build", what, ref, err)
		}
		tb.Skipf("the %s image %s is missing: run devenv images build", what, ref)
	}
}

// GoService builds the Go main package pkg (a path for go build, relative
// to the test's folder) as a static linux binary into dir/name, with a
// Dockerfile that runs it FROM scratch (an image devenv assembles itself:
// no pull, no engine build). It returns dir.
func GoService(tb testing.TB, ctx context.Context, pkg, dir, name string) string {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, name), pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building %s: %v\n%s", pkg, err, out)
	}
	df := fmt.Sprintf("FROM scratch\nCOPY %s /%s\nENTRYPOINT [\"/%s\"]\n", name, name, name)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// Name returns a short unique name with the given prefix.
func Name(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// Log collects what a logger writes, for assertions, and mirrors it to the test log.
type Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
	TB  testing.TB
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.TB != nil {
		l.TB.Logf("%s", strings.TrimRight(string(p), "\n"))
	}
	return l.buf.Write(p)
}

// String returns everything written so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// CopyDir copies a folder, leaving out build outputs (bin, target).
func CopyDir(tb testing.TB, src, dst string) {
	tb.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() && (rel == "bin" || rel == "target") {
			return filepath.SkipDir
		}
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, info.Mode().Perm())
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// Proxy calls a Service's HTTP endpoint through the API server's service proxy.
func Proxy(ctx context.Context, c *cluster.Cluster, ns, verb, svcPort, path string, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req := c.Client.CoreV1().RESTClient().Verb(verb).
		AbsPath("/api/v1/namespaces/" + ns + "/services/" + svcPort + "/proxy" + path)
	if body != nil {
		req = req.Body(body).SetHeader("Content-Type", "application/json")
	}
	return req.DoRaw(ctx)
}

// Eventually polls f every interval until it succeeds or timeout passes, and
// returns its last error.
func Eventually(ctx context.Context, timeout, interval time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(interval):
		}
	}
}

// RunContainer runs a container to completion and returns its output
// (stdout, then stderr) and exit code; the container is removed afterwards.
func RunContainer(ctx context.Context, tb testing.TB, cli *client.Client, cfg *container.Config, host *container.HostConfig) (stdout, stderr string, code int64) {
	tb.Helper()
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: host})
	if err != nil {
		tb.Fatal(err)
	}
	defer cli.ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	wait := cli.ContainerWait(ctx, res.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		tb.Fatal(err)
	}
	select {
	case r := <-wait.Result:
		code = r.StatusCode
	case err := <-wait.Error:
		tb.Fatal(err)
	}
	rc, err := cli.ContainerLogs(ctx, res.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer rc.Close()
	var o, e bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e, rc); err != nil {
		tb.Fatal(err)
	}
	return o.String(), e.String(), code
}
