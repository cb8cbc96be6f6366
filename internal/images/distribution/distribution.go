// Package distribution describes the offline registry stand-in,
// devenv.local/registry:3: the CNCF distribution registry
// (github.com/distribution/distribution/v3, what the registry:3 image runs)
// compiled into a static binary in a FROM scratch image. It stands in for
// registry:3 as the local registry of a kind cluster: plain HTTP on port
// 5000, blobs on the filesystem under /var/lib/registry (a volume), the
// configuration at /etc/distribution/config.yml as in the real image.
//
// The build follows the kfake stand-in's: it writes a small module (a
// main.go like distribution's cmd/registry, with only the filesystem and
// in-memory storage drivers, so that no cloud SDK is downloaded or
// compiled), resolves it with `go mod tidy` at the version pinned below
// through the host's module proxy, compiles it with CGO_ENABLED=0 on the
// host and sends the binary to the engine's builder (ImageBuild).
package distribution

import (
	"archive/tar"
	"context"
	_ "embed"

	"github.com/devenv-tool/devenv/internal/images/standin"
)

// Name and reference of the stand-in.
const (
	Name = "registry"
	// Ref is fixed: the recipe hash lives in the image's LabelRecipe.
	Ref = standin.Registry + "/registry:3"
	// For is the image repository the stand-in replaces (Docker Hub's
	// library/registry).
	For = "registry"
	// Port is the port the registry serves plain HTTP on.
	Port = 5000
	// DataDir is the image's data volume, where the blobs are kept.
	DataDir = "/var/lib/registry"
	// ConfigPath is the registry's configuration in the image.
	ConfigPath = "/etc/distribution/config.yml"
)

// Version is the distribution release the registry is built from.
const Version = "v3.1.2"

// revision changes whenever this builder changes what it produces.
const revision = "1"

var (
	//go:embed files/main.go.txt
	mainGo []byte
	//go:embed files/Dockerfile
	dockerfile []byte
	//go:embed files/config.yml
	config []byte
)

// StandIn describes the registry stand-in.
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
	return []string{Name, revision, Version, string(goMod()), string(mainGo), string(dockerfile), string(config)}, nil
}

// goMod is the go.mod of the registry's build module.
func goMod() []byte {
	return []byte("module devenvregistry\n\ngo 1.26\n\nrequire github.com/distribution/distribution/v3 " + Version + "\n")
}

func build(ctx context.Context, env *standin.Env, labels map[string]string) error {
	step := func(s string) {
		if env.Step != nil {
			env.Step(s)
		}
	}
	binary, err := standin.BuildGo(ctx, env, standin.GoProgram{
		Name: "registry", What: "the registry", Mods: "distribution " + Version,
		Files: map[string][]byte{"go.mod": goMod(), "main.go": mainGo},
	}, step)
	if err != nil {
		return err
	}

	step("docker build " + Ref)
	tarball, err := buildContext(binary)
	if err != nil {
		return err
	}
	return standin.BuildDockerfile(ctx, env, standin.DockerBuild{Ref: Ref, Context: tarball, Labels: labels})
}

// buildContext is the tar the engine builds from: the Dockerfile, the
// executable registry, its configuration, the (empty) data folder and a
// /tmp (scratch has no mkdir).
func buildContext(binary []byte) ([]byte, error) {
	return standin.TarEntries([]standin.TarEntry{
		{Header: tar.Header{Name: "Dockerfile", Mode: 0o644, Typeflag: tar.TypeReg}, Body: dockerfile},
		{Header: tar.Header{Name: "registry", Mode: 0o755, Typeflag: tar.TypeReg}, Body: binary},
		{Header: tar.Header{Name: "config.yml", Mode: 0o644, Typeflag: tar.TypeReg}, Body: config},
		{Header: tar.Header{Name: "var/", Mode: 0o755, Typeflag: tar.TypeDir}},
		{Header: tar.Header{Name: "var/lib/", Mode: 0o755, Typeflag: tar.TypeDir}},
		{Header: tar.Header{Name: "var/lib/registry/", Mode: 0o755, Typeflag: tar.TypeDir}},
		{Header: tar.Header{Name: "tmp/", Mode: 0o1777, Typeflag: tar.TypeDir}},
	})
}
