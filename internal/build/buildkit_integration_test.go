package build

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/testenv"
)

// jreStandIn is the JRE stand-in (internal/images/java), a local image no
// registry has.
const jreStandIn = "devenv.local/jre:17"

// TestIntegrationBuildKitDockerfile builds, on the real engine and from a
// base image that exists only locally, a Dockerfile that only BuildKit
// takes (COPY --chmod) with RUN heredocs (which Docker 20.10's BuildKit
// gets rewritten by devenv), then reads the new layers of the saved image:
// the copied file's mode and the files the heredocs wrote.
func TestIntegrationBuildKitDockerfile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image with the real Docker engine; skipped with -short")
	}
	docker := connect(t)
	testenv.RequireImage(t, docker, jreStandIn, "JRE stand-in")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	project := fmt.Sprintf("itest%d", time.Now().UnixNano()%1_000_000)
	t.Cleanup(func() { testenv.RemoveImages(t, docker, LabelProject+"="+project) })

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "hello.sh"), "#!/bin/sh\necho hello\n") // 0644 in the context
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM "+jreStandIn+`
COPY --chmod=0755 hello.sh /x
RUN <<EOF
set -e
mkdir -p /heredoc
echo "from a heredoc" > /heredoc/out
EOF
RUN cat <<EOT > /heredoc/second
second line
EOT
`)
	var out bytes.Buffer
	res, err := Image(ctx, docker, Spec{Service: "bk", Project: project, Context: dir}, ImageOptions{Output: &out})
	t.Logf("build output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Assembled != nil {
		t.Fatal("the image was assembled by devenv, not built by the engine")
	}
	// BuildKit's steps ("#5 [2/4] COPY ..."); the legacy builder's are "Step 2/4".
	if !strings.Contains(out.String(), "[bk] #") || strings.Contains(out.String(), "Step 2/") {
		t.Errorf("the output does not say BuildKit built the image")
	}

	base, err := docker.ImageInspect(ctx, jreStandIn)
	if err != nil {
		t.Fatal(err)
	}
	files := newLayerFiles(t, ctx, docker, res.ID, len(base.RootFS.Layers))
	x, ok := files["x"]
	if !ok {
		t.Fatalf("/x is not in the image's new layers (%d files)", len(files))
	}
	if mode := x.hdr.FileInfo().Mode().Perm(); mode != 0o755 {
		t.Errorf("/x has mode %v, want 0755 (COPY --chmod)", mode)
	}
	for name, want := range map[string]string{"heredoc/out": "from a heredoc\n", "heredoc/second": "second line\n"} {
		if f, ok := files[name]; !ok || string(f.body) != want {
			t.Errorf("/%s = %q (present %v), want %q", name, f.body, ok, want)
		}
	}
}

type layerFile struct {
	hdr  *tar.Header
	body []byte
}

// newLayerFiles saves image id and returns the files of its layers above
// the first skip (the base image's), later layers winning, by path without
// a leading "/" or "./".
func newLayerFiles(t *testing.T, ctx context.Context, docker *client.Client, id string, skip int) map[string]layerFile {
	t.Helper()
	saved, err := dockerSave(ctx, t, docker, id)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.Image(func() (io.ReadCloser, error) { return os.Open(saved) }, nil)
	if err != nil {
		t.Fatalf("reading the saved image: %v", err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) <= skip {
		t.Fatalf("the image has %d layers, its base %d: no new layer", len(layers), skip)
	}
	files := map[string]layerFile{}
	for _, l := range layers[skip:] {
		r, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(r)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("reading a layer: %v", err)
			}
			body, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimPrefix(strings.TrimPrefix(hdr.Name, "./"), "/")
			files[strings.TrimSuffix(name, "/")] = layerFile{hdr: hdr, body: body}
		}
		r.Close()
	}
	return files
}

// dockerSave writes `docker save id` to a file in the test's temp folder.
func dockerSave(ctx context.Context, t *testing.T, docker *client.Client, id string) (string, error) {
	rc, err := docker.ImageSave(ctx, []string{id})
	if err != nil {
		return "", fmt.Errorf("saving %s: %w", id, err)
	}
	defer rc.Close()
	file := filepath.Join(t.TempDir(), "image.tar")
	f, err := os.Create(file)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return "", fmt.Errorf("saving %s: %w", id, err)
	}
	return file, f.Close()
}
