// Package kfake describes the offline Kafka broker stand-in,
// devenv.local/kafka:kfake: devenv's internal/fakebroker package compiled into a
// static binary in a FROM scratch image. It stands in for apache/kafka and
// carries the label standin.LabelBroker=kfake, which tells the kafka package
// to configure it through DEVENV_KAFKA_* variables instead of Kafka's own.
//
// The build writes a small module (fakebroker's embedded sources plus a
// main.go), resolves it with `go mod tidy` at the franz-go versions pinned
// below (the ones devenv's go.mod uses), compiles it with CGO_ENABLED=0 and
// sends the binary to the engine's builder (ImageBuild).
package kfake

import (
	"archive/tar"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"strings"

	"github.com/devenv-tool/devenv/internal/fakebroker"
	"github.com/devenv-tool/devenv/internal/images/standin"
)

// Name and reference of the stand-in, and the broker kind its label announces.
const (
	Name = "kafka"
	// Ref is fixed: the recipe hash lives in the image's LabelRecipe, and the
	// kafka package can default to this name.
	Ref = standin.Registry + "/kafka:kfake"
	// For is the image repository the stand-in replaces.
	For = "apache/kafka"
	// Broker is the value of standin.LabelBroker on the image.
	Broker = "kfake"
	// DataDir is the image's data volume; the broker persists there.
	DataDir = "/data"
	// InternalPort and ExternalPort are the ports the image exposes.
	InternalPort = 9092
	ExternalPort = 19092
)

// Module versions the broker is built with. They must equal the versions in
// devenv's go.mod (a unit test checks), so the image runs the code devenv's
// own tests ran.
const (
	FranzGoVersion = "v1.22.3"
	KfakeVersion   = "v0.0.0-20260918054303-01f206a7e32c"
	KmsgVersion    = "v1.15.1"
)

// revision changes whenever this builder changes what it produces.
const revision = "1"

var (
	//go:embed files/main.go.txt
	mainGo []byte
	//go:embed files/Dockerfile
	dockerfile []byte
)

// StandIn describes the kfake broker stand-in.
func StandIn() standin.StandIn {
	return standin.StandIn{
		Name:    Name,
		Ref:     Ref,
		For:     For,
		Prereqs: []standin.Prereq{{Command: "go", Package: "golang-go"}},
		Recipe:  recipe,
		Build:   build,
	}
}

func recipe() ([]string, error) {
	src, err := brokerSources()
	if err != nil {
		return nil, err
	}
	parts := []string{Name, revision, FranzGoVersion, KfakeVersion, KmsgVersion, string(mainGo), string(dockerfile)}
	return append(parts, standin.HashFiles(src)...), nil
}

// brokerSources returns fakebroker's non-test Go files by name.
func brokerSources() (map[string][]byte, error) {
	files := map[string][]byte{}
	err := fs.WalkDir(fakebroker.Source, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := fs.ReadFile(fakebroker.Source, path)
		files[path] = b
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the embedded broker sources: %w", err)
	}
	if len(files) == 0 {
		return nil, errors.New("the embedded broker sources are empty")
	}
	return files, nil
}

// goMod is the go.mod of the broker's build module.
func goMod() []byte {
	return []byte("module devenvbroker\n\ngo 1.24\n\nrequire (\n" +
		"\tgithub.com/twmb/franz-go " + FranzGoVersion + "\n" +
		"\tgithub.com/twmb/franz-go/pkg/kfake " + KfakeVersion + "\n" +
		"\tgithub.com/twmb/franz-go/pkg/kmsg " + KmsgVersion + "\n)\n")
}

func build(ctx context.Context, env *standin.Env, labels map[string]string) error {
	step := func(s string) {
		if env.Step != nil {
			env.Step(s)
		}
	}
	src, err := brokerSources()
	if err != nil {
		return err
	}
	files := map[string][]byte{"go.mod": goMod(), "main.go": mainGo}
	for name, b := range src {
		files[filepath.Join("fakebroker", name)] = b
	}
	binary, err := standin.BuildGo(ctx, env, standin.GoProgram{
		Name: "devenv-kafka", What: "the broker", Mods: "franz-go " + FranzGoVersion, Files: files,
	}, step)
	if err != nil {
		return err
	}

	step("docker build " + Ref)
	tarball, err := buildContext(binary)
	if err != nil {
		return err
	}
	all := maps.Clone(labels)
	if all == nil {
		all = map[string]string{}
	}
	all[standin.LabelBroker] = Broker
	return standin.BuildDockerfile(ctx, env, standin.DockerBuild{Ref: Ref, Context: tarball, Labels: all})
}

// buildContext is the tar the engine builds from: the Dockerfile, the
// executable broker and an empty data folder (scratch has no mkdir).
func buildContext(binary []byte) ([]byte, error) {
	return standin.TarEntries([]standin.TarEntry{
		{Header: tar.Header{Name: "Dockerfile", Mode: 0o644, Typeflag: tar.TypeReg}, Body: dockerfile},
		{Header: tar.Header{Name: "devenv-kafka", Mode: 0o755, Typeflag: tar.TypeReg}, Body: binary},
		{Header: tar.Header{Name: "data/", Mode: 0o777, Typeflag: tar.TypeDir}},
	})
}
