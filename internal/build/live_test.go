package build

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/internal/supervise"
)

// assembleDir assembles the FROM-scratch project in dir (no Docker needed).
func assembleDir(t *testing.T, dir string, live bool) *Assembled {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := Spec{Service: "svc", Project: "p", Context: dir}
	res, err := Image(ctx, nil, spec, ImageOptions{Live: live})
	if err != nil {
		t.Fatal(err)
	}
	return res.Assembled
}

func TestLiveDiff(t *testing.T) {
	dir := t.TempDir()
	df := "FROM scratch\nCOPY app /app\nCOPY static/ /srv/static/\nENTRYPOINT [\"/app\"]\nCMD [\"-v\"]\n"
	writeFile(t, filepath.Join(dir, "Dockerfile"), df)
	writeFile(t, filepath.Join(dir, "app"), "binary v1")
	writeFile(t, filepath.Join(dir, "static/keep.txt"), "same")
	writeFile(t, filepath.Join(dir, "static/old.txt"), "goes away")
	writeFile(t, filepath.Join(dir, "static/gone/a.txt"), "its folder goes")
	v1 := assembleDir(t, dir, true)

	var cfg imageConfig
	if err := json.Unmarshal(v1.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	if want := []string{supervise.Path, "--", "/app"}; !slices.Equal(cfg.Config.Entrypoint, want) || !slices.Equal(cfg.Config.Cmd, []string{"-v"}) {
		t.Fatalf("entrypoint %q cmd %q, want %q and the image's CMD", cfg.Config.Entrypoint, cfg.Config.Cmd, want)
	}

	same, err := LiveDiff(v1, assembleDir(t, dir, true))
	if err != nil || !same.Empty() {
		t.Fatalf("the same files: changes %+v, err %v; want none", same, err)
	}

	writeFile(t, filepath.Join(dir, "app"), "binary v2")
	writeFile(t, filepath.Join(dir, "static/new/b.txt"), "new")
	for _, p := range []string{"static/old.txt", "static/gone"} {
		if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	v2 := assembleDir(t, dir, true)
	ch, err := LiveDiff(v1, v2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/app", "/srv/static/new", "/srv/static/new/b.txt"}; !slices.Equal(ch.Files, want) {
		t.Errorf("files %q, want %q", ch.Files, want)
	}
	if want := []string{"/srv/static/gone", "/srv/static/old.txt"}; !slices.Equal(ch.Removed, want) {
		t.Errorf("removed %q, want %q", ch.Removed, want)
	}
	tr := tar.NewReader(bytes.NewReader(ch.Tar))
	got := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got[h.Name] = string(b)
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want root as in the image", h.Name, h.Uid, h.Gid)
		}
	}
	if got["app"] != "binary v2" || got["srv/static/new/b.txt"] != "new" || len(got) != 3 {
		t.Errorf("tar holds %q", got)
	}

	// Back again is the reverse.
	back, err := LiveDiff(v2, v1)
	if err != nil || !slices.Equal(back.Removed, []string{"/srv/static/new"}) || !slices.Contains(back.Files, "/srv/static/old.txt") {
		t.Errorf("reverse: %+v, %v", back, err)
	}

	// Other settings, or no supervisor: no live update.
	writeFile(t, filepath.Join(dir, "Dockerfile"), strings.Replace(df, "CMD [\"-v\"]", "CMD [\"-q\"]", 1))
	if _, err := LiveDiff(v2, assembleDir(t, dir, true)); err == nil || !strings.Contains(err.Error(), "settings") {
		t.Errorf("changed CMD: err %v, want one about the settings", err)
	}
	if _, err := LiveDiff(v2, assembleDir(t, dir, false)); err == nil || !strings.Contains(err.Error(), "supervisor") {
		t.Errorf("no supervisor: err %v", err)
	}
}

// TestLiveImageNeedsNoGo: assembling a live image takes the supervisor
// embedded in devenv; no go command (nor anything else) is run.
func TestLiveImageNeedsNoGo(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n")
	writeFile(t, filepath.Join(dir, "app"), "binary")
	t.Setenv("PATH", t.TempDir())
	a := assembleDir(t, dir, true)
	if !a.Live {
		t.Fatal("the image is not live")
	}
	var cfg imageConfig
	if err := json.Unmarshal(a.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Architecture != runtime.GOARCH {
		t.Fatalf("architecture %q, want the engine's (without one, the host's) %q", cfg.Architecture, runtime.GOARCH)
	}
	want, err := supervise.Binary(context.Background(), runtime.GOARCH)
	if err != nil {
		t.Skipf("no embedded supervisor for this host: %v", err)
	}
	for _, l := range a.Layers {
		tr := tar.NewReader(bytes.NewReader(l.Data))
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if "/"+h.Name == supervise.Path {
				got, _ := io.ReadAll(tr)
				if !bytes.Equal(got, want) || h.Mode != 0o755 {
					t.Fatalf("%s in the image: %d bytes, mode %o; want the embedded %d bytes, 0755", supervise.Path, len(got), h.Mode, len(want))
				}
				return
			}
		}
	}
	t.Fatalf("no %s in the image", supervise.Path)
}

func TestLiveLayer(t *testing.T) {
	for _, tc := range []struct {
		arch string
		want string // in the errNoLive error; "" = a layer
	}{
		{arch: "amd64"},
		{arch: "arm64"},
		{arch: "riscv64", want: "no live update: devenv carries its supervisor for linux/amd64 and linux/arm64, not for linux/riscv64 images"},
		{arch: "", want: "the image names no architecture"},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			l, err := liveLayer(context.Background(), tc.arch)
			if tc.want == "" {
				if err != nil || len(l.Data) == 0 || !strings.HasPrefix(l.DiffID, "sha256:") {
					t.Fatalf("layer %q (%d bytes), err %v", l.DiffID, len(l.Data), err)
				}
				return
			}
			if !errors.Is(err, errNoLive) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want errNoLive saying %q", err, tc.want)
			}
		})
	}
}
