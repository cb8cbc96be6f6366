// Package standin holds what every offline stand-in image shares: the labels
// devenv puts on them, the description of one stand-in, and the content hash
// that decides whether an existing image is still current.
//
// A stand-in replaces an image devenv needs (kindest/node, apache/kafka, a JRE
// base) on a machine that cannot pull it. It is always tagged under
// devenv.local/..., never under the real name.
package standin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/project"
)

// Labels put on every stand-in image (their keys live in package project).
// Images built before devenv used one label namespace carry the same labels
// as dev.devenv.*: read them with project.ImageLabel.
const (
	// LabelName is the stand-in's short name ("kind-node", "kafka", "jre", "h2", "debian-base").
	LabelName = project.LabelStandIn
	// LabelFor is the real image repository it stands in for ("kindest/node").
	LabelFor = project.LabelStandInFor
	// LabelRecipe is the hash of everything the image was built from.
	LabelRecipe = project.LabelRecipe
	// LabelBroker tells the kafka package how to configure a broker image:
	// "kfake" for devenv's offline broker. The real apache/kafka has no such label.
	LabelBroker = project.LabelBroker
	// Registry is the registry part of every stand-in's name.
	Registry = project.Registry
)

// Prereq is a host tool a stand-in's build needs, and the Debian package that brings it.
type Prereq struct {
	Command string // looked up in PATH, or an absolute path to a file that must exist
	Package string // Debian package name for the apt-get install hint
}

// Env is what a stand-in's build gets to work with.
type Env struct {
	Docker   *client.Client
	Log      *log.Logger
	CacheDir string // a folder of devenv's own for sources and binaries kept between builds
	// Step reports progress: a short description of the step that starts now.
	Step func(step string)
	// Output receives the output of long commands when the user asked for -v.
	Output io.Writer
}

// StandIn describes one stand-in image and how to build it.
type StandIn struct {
	Name    string   // short name, e.g. "kind-node"
	Ref     string   // the tag it is built under, e.g. devenv.local/kind-node:v1.37.2
	For     string   // the real repository it replaces, e.g. "kindest/node"
	Needs   []string // names of stand-ins that must be built first
	Prereqs []Prereq
	// Matches, when set, says which image references the stand-in replaces
	// (for example several repositories, or only some tags). When nil, a
	// reference matches if its repository equals For.
	Matches func(ref string) bool
	// Recipe lists every input of the build (versions, embedded files' contents,
	// the builder's own revision); its hash is the image's LabelRecipe.
	Recipe func() ([]string, error)
	// Build builds the image and tags it Ref with the labels from Labels.
	Build func(ctx context.Context, env *Env, labels map[string]string) error
}

// Hash returns the content hash of a recipe.
func Hash(parts []string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Labels returns the labels a stand-in's image must carry for the given recipe hash.
func (s StandIn) Labels(recipeHash string) map[string]string {
	return map[string]string{LabelName: s.Name, LabelFor: s.For, LabelRecipe: recipeHash}
}

// HashFiles is a helper for Recipe functions: the sorted "name=sha256" lines of files given as name -> content.
func HashFiles(files map[string][]byte) []string {
	out := make([]string, 0, len(files))
	for name, b := range files {
		sum := sha256.Sum256(b)
		out = append(out, name+"="+hex.EncodeToString(sum[:]))
	}
	sort.Strings(out)
	return out
}

// SplitRef returns an image reference's repository (without docker.io/ and
// library/) and its tag ("" when it has none; a digest is dropped).
func SplitRef(ref string) (repo, tag string) {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref, tag = ref[:i], ref[i+1:]
	}
	ref = strings.TrimPrefix(ref, "docker.io/")
	ref = strings.TrimPrefix(ref, "index.docker.io/")
	ref = strings.TrimPrefix(ref, "library/")
	return ref, tag
}
