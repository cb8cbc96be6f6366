package standin

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dockerx"
)

// DockerBuild describes an image built through the Docker API from files held
// in memory (a Dockerfile and whatever it COPYs).
type DockerBuild struct {
	Ref       string            // tag to give the image
	Files     map[string][]byte // the build context; must contain "Dockerfile"
	BuildArgs map[string]string
	Labels    map[string]string
}

var (
	stepLine = regexp.MustCompile(`^Step (\d+/\d+) : (.*)$`)
)

// BuildDockerfile builds b with the engine's builder (ImageBuild), reports
// each Dockerfile step through env.Step, streams the build output to
// env.Output when set, and returns an error carrying the output's tail when
// the build fails.
func BuildDockerfile(ctx context.Context, env *Env, b DockerBuild) error {
	if _, ok := b.Files["Dockerfile"]; !ok {
		return fmt.Errorf("building %s: the build context has no Dockerfile", b.Ref)
	}
	tarball, err := TarFiles(b.Files)
	if err != nil {
		return fmt.Errorf("building %s: %w", b.Ref, err)
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
