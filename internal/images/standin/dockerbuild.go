package standin

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/execx"
)

// DockerBuild describes an image built through the Docker API from files held
// in memory (a Dockerfile and whatever it COPYs).
type DockerBuild struct {
	Ref       string            // tag to give the image
	Files     map[string][]byte // the build context; must contain "Dockerfile"
	BuildArgs map[string]string
	Labels    map[string]string
	// Context is a ready build context (a tar holding the Dockerfile, see
	// TarEntries) used instead of Files, for one that needs modes or
	// folders.
	Context []byte
}

// TarEntry is one entry of a build context made by TarEntries.
type TarEntry struct {
	Header tar.Header // Name, Mode and Typeflag; Size and ModTime are set
	Body   []byte
}

// TarEntries returns an uncompressed tar of entries, in their order, with
// fixed timestamps.
func TarEntries(entries []TarEntry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.Header
		hdr.Size = int64(len(e.Body))
		hdr.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(&hdr); err != nil {
			return nil, fmt.Errorf("packing %s: %w", hdr.Name, err)
		}
		if _, err := tw.Write(e.Body); err != nil {
			return nil, fmt.Errorf("packing %s: %w", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("packing the build context: %w", err)
	}
	return buf.Bytes(), nil
}

var (
	stepLine = regexp.MustCompile(`^Step (\d+/\d+) : (.*)$`)
)

// BuildDockerfile builds b with the engine's builder (ImageBuild), reports
// each Dockerfile step through env.Step, streams the build output to
// env.Output when set, and returns an error carrying the output's tail when
// the build fails.
func BuildDockerfile(ctx context.Context, env *Env, b DockerBuild) error {
	tarball := b.Context
	if tarball == nil {
		if _, ok := b.Files["Dockerfile"]; !ok {
			return fmt.Errorf("building %s: the build context has no Dockerfile", b.Ref)
		}
		var err error
		if tarball, err = TarFiles(b.Files); err != nil {
			return fmt.Errorf("building %s: %w", b.Ref, err)
		}
	}
	args := make(map[string]*string, len(b.BuildArgs))
	for k, v := range b.BuildArgs {
		args[k] = &v
	}
	res, err := env.Docker.ImageBuild(ctx, bytes.NewReader(tarball), client.ImageBuildOptions{
		Tags:        []string{b.Ref},
		Dockerfile:  "Dockerfile",
		BuildArgs:   args,
		Labels:      b.Labels,
		Remove:      true,
		ForceRemove: true,
	})
	if err != nil {
		return fmt.Errorf("building %s: %w", b.Ref, err)
	}
	defer res.Body.Close()
	if err := followBuild(res.Body, env); err != nil {
		return fmt.Errorf("building %s: %w", b.Ref, err)
	}
	return nil
}

// followBuild reads the engine's JSON message stream of a build, reporting
// each Dockerfile step as a progress step.
func followBuild(r io.Reader, env *Env) error {
	return dockerx.ReadStream(r, dockerx.StreamOptions{Out: env.Output, Tail: 25, Line: func(line string) {
		if sm := stepLine.FindStringSubmatch(line); sm != nil && env.Step != nil {
			env.Step(fmt.Sprintf("step %s: %s", sm[1], shorten(sm[2], 70)))
		}
	}})
}

func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// TarFiles returns an uncompressed tar archive of files (name -> content),
// in a stable order with fixed timestamps.
func TarFiles(files map[string][]byte) ([]byte, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		hdr := &tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("packing %s: %w", n, err)
		}
		if _, err := tw.Write(files[n]); err != nil {
			return nil, fmt.Errorf("packing %s: %w", n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("packing build context: %w", err)
	}
	return buf.Bytes(), nil
}

// GoProgram is a Go main package written to a temporary folder (Files:
// go.mod, main.go and whatever else, by relative path) and compiled as a
// static linux binary named Name, for a stand-in that runs it FROM scratch.
type GoProgram struct {
	Name  string            // the binary's name
	What  string            // for messages: "the broker", "the registry"
	Mods  string            // for the progress line: "franz-go v1.20.0"
	Files map[string][]byte // relative path -> content
}

// BuildGo writes p's files to a temporary folder under env.CacheDir,
// resolves its modules (go mod tidy, through the module proxy), compiles it
// and returns the binary. step reports each part.
func BuildGo(ctx context.Context, env *Env, p GoProgram, step func(string)) ([]byte, error) {
	dir, err := os.MkdirTemp(env.CacheDir, p.Name+"-build-")
	if err != nil {
		return nil, fmt.Errorf("creating the build folder: %w", err)
	}
	defer os.RemoveAll(dir)
	for name, b := range p.Files {
		f := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return nil, fmt.Errorf("writing %s: %w", f, err)
		}
		if err := os.WriteFile(f, b, 0o644); err != nil {
			return nil, fmt.Errorf("writing %s: %w", f, err)
		}
	}
	goEnv := []string{"CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=-mod=mod", "GOWORK=off"}
	step("go mod tidy (" + p.Mods + ")")
	if err := execx.Run(ctx, execx.Cmd{Args: []string{"go", "mod", "tidy"}, Dir: dir, Env: goEnv, Stream: env.Output}); err != nil {
		return nil, fmt.Errorf("resolving the modules of %s: %w", p.What, err)
	}
	step("go build " + p.Name)
	bin := filepath.Join(dir, p.Name)
	if err := execx.Run(ctx, execx.Cmd{
		Args: []string{"go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "."},
		Dir:  dir, Env: goEnv, Stream: env.Output,
	}); err != nil {
		return nil, fmt.Errorf("compiling %s: %w", p.What, err)
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("reading the binary of %s: %w", p.What, err)
	}
	return binary, nil
}
