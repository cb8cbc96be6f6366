package build

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dockerfile"
	"github.com/devenv-tool/devenv/internal/dockerx"
)

// Docker engines build a Dockerfile with one of two builders: the legacy
// one, and BuildKit (the default since Docker 23, offered through the API
// since 18.09). devenv sends the same tar context to either: BuildKit reads
// it from the request body (the engine serves it to BuildKit's Dockerfile
// frontend as an HTTP context), so no gRPC session is needed. A session
// would be needed only for what devenv does not use: secrets and SSH
// mounts, local contexts streamed on demand, and registry credentials for a
// FROM that must be pulled (without one, BuildKit pulls anonymously). With
// image-resolve-mode "default", which the engine sets when pull is off,
// BuildKit takes a FROM image the engine has from the engine's own store
// without asking a registry (Docker 20.10: builder-next's
// containerimage.Source.ResolveImageConfig), so offline builds from local
// base images work.

// builderChoice is which of the engine's builders builds a Dockerfile.
type builderChoice struct {
	version build.BuilderVersion
	// why says so, once, in the debug output.
	why string
	// oldFrontend is set when BuildKit's built-in Dockerfile frontend
	// predates heredocs (engine API below 1.42: Docker 20.10 and older,
	// BuildKit v0.8).
	oldFrontend bool
}

// buildkitRefused is set when the engine refused a BuildKit build: later
// builds in the process use the legacy builder.
var buildkitRefused atomic.Bool

// chooseBuilder picks the builder from the engine's /_ping answer: BuildKit
// when the engine names it its default (Builder-Version: 2), or names no
// default (Docker 18.09 to 20.10 without features.buildkit) on Linux with
// API 1.39 or later; the legacy builder when the engine names it (Builder-
// Version: 1, which an engine configured with features.buildkit=false
// says), on other systems, and on older engines.
func chooseBuilder(p client.PingResult) builderChoice {
	old := !apiAtLeast(p.APIVersion, 1, 42)
	switch {
	case p.BuilderVersion == build.BuilderBuildKit:
		return builderChoice{build.BuilderBuildKit, "BuildKit (the engine's default builder)", old}
	case p.BuilderVersion == build.BuilderV1:
		return builderChoice{build.BuilderV1, "the legacy builder (the engine's configured default)", true}
	case p.OSType != "" && p.OSType != "linux":
		return builderChoice{build.BuilderV1, "the legacy builder (BuildKit is used on Linux engines only)", true}
	case apiAtLeast(p.APIVersion, 1, 39):
		return builderChoice{build.BuilderBuildKit, "BuildKit (offered by the engine's API " + p.APIVersion + ")", old}
	}
	return builderChoice{build.BuilderV1, "the legacy builder (engine API " + p.APIVersion + " predates BuildKit)", true}
}

// apiAtLeast reports whether API version v ("1.41") is at least major.minor.
func apiAtLeast(v string, major, minor int) bool {
	a, b, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	ma, err1 := strconv.Atoi(a)
	mi, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// builderFor asks the engine which builder to use.
func builderFor(ctx context.Context, docker *client.Client) builderChoice {
	if buildkitRefused.Load() {
		return builderChoice{build.BuilderV1, "the legacy builder (the engine refused a BuildKit build earlier)", true}
	}
	p, err := docker.Ping(ctx, client.PingOptions{})
	if err != nil {
		return builderChoice{build.BuilderV1, fmt.Sprintf("the legacy builder (asking the engine for its builders: %v)", err), true}
	}
	return chooseBuilder(p)
}

// noted holds the builder choices already named in the debug output.
var noted sync.Map // builder description -> true

// refusedBuildKit reports whether err, the engine's answer to a BuildKit
// build request (before any output), says that it does not offer BuildKit.
func refusedBuildKit(err error) bool {
	if cerrdefs.IsInvalidArgument(err) || cerrdefs.IsNotImplemented(err) {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "buildkit") || strings.Contains(msg, "invalid version")
}

// engineBuild is a build by the engine's builder.
type engineBuild struct {
	spec    Spec
	data    []byte // the tar context
	dfName  string // the Dockerfile's name in data
	df      []byte // the Dockerfile sent
	args    map[string]*string
	labels  map[string]string
	noCache bool
	out     io.Writer // the prefixed build output (io.Discard without -v)
}

// run builds with BuildKit when the engine offers it, else (or when the
// engine refuses it) with the legacy builder, and returns the image ID.
func (e engineBuild) run(ctx context.Context, docker *client.Client, choice builderChoice) (string, error) {
	if choice.version == build.BuilderBuildKit && e.ignoresItsOwnFiles() {
		// The context goes as a tar, which must hold the Dockerfile and the
		// .dockerignore; BuildKit would then copy them with `COPY .` where
		// the .dockerignore excludes them (the docker CLI sends them
		// apart). The legacy builder drops them as the file asks.
		choice = builderChoice{build.BuilderV1, "the legacy builder (the .dockerignore excludes the Dockerfile or itself, which BuildKit cannot honour for a context sent as a tar)", true}
	}
	if choice.version == build.BuilderBuildKit {
		id, err := e.send(ctx, docker, choice)
		if err == nil || !refusedBuildKit(err) || ctx.Err() != nil {
			return id, err
		}
		buildkitRefused.Store(true)
		fmt.Fprintf(e.out, "the engine refused a BuildKit build (%v): the legacy builder from now on\n", err)
		choice = builderChoice{build.BuilderV1, "the legacy builder (the engine refused BuildKit)", true}
	}
	return e.send(ctx, docker, choice)
}

// ignoresItsOwnFiles reports whether the context's .dockerignore excludes
// the Dockerfile or the .dockerignore itself.
func (e engineBuild) ignoresItsOwnFiles() bool {
	pm, err := dockerignore(e.spec.Context)
	if err != nil || pm == nil {
		return false
	}
	for _, f := range []string{e.dfName, ".dockerignore"} {
		if excluded, err := pm.MatchesOrParentMatches(f); err == nil && excluded {
			return true
		}
	}
	return false
}

// send sends the build to one builder.
func (e engineBuild) send(ctx context.Context, docker *client.Client, choice builderChoice) (string, error) {
	data, df := e.data, e.df
	if choice.oldFrontend {
		if rewritten, ok := rewriteRunHeredocs(df); ok {
			var err error
			if data, _, _, err = buildContext(e.spec, ContextOptions{Dockerfile: rewritten}); err != nil {
				return "", err
			}
			df = rewritten
			fmt.Fprintf(e.out, "RUN heredocs rewritten as shell commands for this engine's Dockerfile parser\n")
		}
	}
	if _, dup := noted.LoadOrStore(choice.why, true); !dup {
		fmt.Fprintf(e.out, "building with %s\n", choice.why)
	}
	resp, err := docker.ImageBuild(ctx, bytes.NewReader(data), client.ImageBuildOptions{
		Dockerfile:  e.dfName,
		BuildArgs:   e.args,
		Labels:      e.labels,
		Remove:      true,
		ForceRemove: true,
		NoCache:     e.noCache,
		Version:     choice.version,
	})
	if err != nil {
		if choice.version == build.BuilderBuildKit && refusedBuildKit(err) {
			return "", err
		}
		return "", fmt.Errorf("the engine refused the build of %s: %w", e.spec.dockerfile(), err)
	}
	defer resp.Body.Close()
	return readBuild(resp.Body, e.out, stepLines{sent: df, orig: e.df, name: e.spec.dockerfile()})
}

// readBuild reads either builder's message stream: the legacy builder's
// output text, or BuildKit's trace, which it prints as steps. It returns
// the image ID. A failed BuildKit step's error names its Dockerfile line
// and carries its last output lines.
func readBuild(r io.Reader, out io.Writer, df stepLines) (string, error) {
	var id, built string
	tr := newTrace(out)
	var traceErr error
	err := dockerx.ReadStream(r, dockerx.StreamOptions{
		Out:  out,
		Tail: tailLines,
		Line: func(l string) {
			// Very old engines only print the ID.
			if after, ok := strings.CutPrefix(l, "Successfully built "); ok {
				built = "sha256:" + after
			}
		},
		Aux: func(a json.RawMessage) {
			var pb []byte
			if len(a) > 0 && a[0] == '"' {
				// moby.buildkit.trace: a base64 protobuf.
				if err := json.Unmarshal(a, &pb); err == nil && traceErr == nil {
					traceErr = tr.add(pb)
				}
				return
			}
			// The legacy builder's aux, and BuildKit's moby.image.id.
			var aux struct {
				ID string `json:"ID"`
			}
			if json.Unmarshal(a, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		},
	})
	if err != nil {
		if vx := tr.failed(); vx != nil {
			return "", stepError(err, vx, df)
		}
		return "", err
	}
	if traceErr != nil {
		return "", traceErr
	}
	if id == "" {
		id = built
	}
	if len(strings.TrimPrefix(id, "sha256:")) < 12 {
		return "", errNoImageID
	}
	return id, nil
}

// stepName is a BuildKit step's name: "[stage 2/5] RUN make" (the stage
// and platform only in multi-stage or multi-platform builds).
var stepName = regexp.MustCompile(`^\[[^\]]*?\s*\d+/\d+\] (.+)$`)

// stepError is a failed BuildKit build's error: the engine's message, the
// Dockerfile line of the failed step, and the step's last output lines.
func stepError(err error, vx *vertex, df stepLines) error {
	msg := err.Error()
	if vx.err != "" && !strings.Contains(msg, vx.err) {
		msg += "\n" + vx.err
	}
	if m := stepName.FindStringSubmatch(vx.name); m != nil {
		where := vx.name
		if line, text := df.find(m[1]); line > 0 {
			where = fmt.Sprintf("%s:%d: %s", df.name, line, text)
		}
		msg += "\nat " + where
	}
	if len(vx.logs) > 0 {
		msg += "\nlast output:\n  " + strings.Join(vx.logs, "\n  ")
	}
	return fmt.Errorf("%s", msg)
}

// stepLines finds the Dockerfile line of a BuildKit step.
type stepLines struct {
	sent []byte // the Dockerfile as sent (heredocs may be rewritten, on the same lines)
	orig []byte // the Dockerfile as devenv read it
	name string // its name in messages
}

// find finds the instruction a BuildKit step named (its text, with
// variables expanded and the keyword upper-cased) in the Dockerfile sent,
// and returns its first line and its text as written; 0 when no
// instruction matches. The instruction of the same keyword whose text
// shares the longest prefix with step's wins.
func (d stepLines) find(step string) (int, string) {
	f, err := dockerfile.Parse(d.sent)
	if err != nil {
		return 0, ""
	}
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	step = norm(step)
	kw, _, _ := strings.Cut(step, " ")
	best, bestLen, text := 0, 0, ""
	for _, n := range f.Nodes {
		orig := norm(n.Original)
		okw, rest, _ := strings.Cut(orig, " ")
		if !strings.EqualFold(okw, kw) {
			continue
		}
		cand := strings.ToUpper(okw) + " " + rest
		l := commonPrefix(cand, step)
		if l > bestLen {
			best, bestLen, text = n.StartLine, l, orig
		}
	}
	if best > 0 && !bytes.Equal(d.orig, d.sent) {
		// The text as the user wrote it.
		if o, err := dockerfile.Parse(d.orig); err == nil {
			for _, n := range o.Nodes {
				if n.StartLine == best {
					text = norm(n.Original)
				}
			}
		}
	}
	return best, text
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
