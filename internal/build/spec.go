package build

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/devenv-tool/devenv/project"
)

// Spec describes one service's build.
type Spec struct {
	Service string
	Project string
	// Context is the build context folder, absolute.
	Context string
	// Dockerfile is the Dockerfile's absolute path; empty means
	// Context/Dockerfile.
	Dockerfile string
	// Args are the build arguments (ARG) passed to the build.
	Args map[string]string
	// Prebuild is the command (program and arguments) run in Context before
	// the image build; empty means none.
	Prebuild []string
	// Watch and Ignore select the prebuild's input files (patterns relative
	// to Context, .dockerignore syntax; empty Watch means everything).
	Watch, Ignore []string
	// Labels are put on the image, next to devenv's own.
	Labels map[string]string
	// Registry is where the cluster pulls the image from, HOST[:PORT] with
	// an optional /PREFIX (devenv.yaml's registry:); the image is named
	// there instead of under devenv.local. "" for a kind cluster that gets
	// its images loaded.
	Registry string
}

// Labels devenv puts on every service image.
const (
	LabelProject = project.LabelProject // the project name
	LabelService = project.LabelService // the service name
)

func (s Spec) dockerfile() string {
	if s.Dockerfile == "" {
		return filepath.Join(s.Context, "Dockerfile")
	}
	return s.Dockerfile
}

func (s Spec) checkContext() error {
	if s.Service == "" {
		return fmt.Errorf("build spec has no service name")
	}
	if !filepath.IsAbs(s.Context) {
		return fmt.Errorf("service %q: build context %q must be an absolute path", s.Service, s.Context)
	}
	fi, err := os.Stat(s.Context)
	if err != nil || !fi.IsDir() {
		return fmt.Errorf("service %q: build context %s is not a folder: create it or fix the service's context in devenv.yaml", s.Service, s.Context)
	}
	return nil
}
