// Package kindnode builds devenv's offline stand-in for the kind node image
// (devenv.local/kind-node:v1.37.2, standing in for kindest/node) from source:
// Kubernetes, containerd, runc, crictl, CNI plugins, etcd, CoreDNS and pause
// are compiled from the Go module proxy, the control-plane images are built
// FROM scratch and preloaded into the node's containerd, and the node is
// assembled the way `kind build node-image` does, on top of the Debian base
// stand-in. Nothing is pulled from a container registry.
//
// Every step keeps its output under <CacheDir>/kind-node/<version> with a
// stamp holding the hash of that step's inputs, so an interrupted build
// resumes where it stopped and a rebuild recompiles only what changed.
package kindnode

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/devenv-tool/devenv/internal/images/debian"
	"github.com/devenv-tool/devenv/internal/images/standin"
)

// Versions of everything the node image is built from. They match what kind
// v0.33.0's base image ships and what kubeadm v1.37 asks for.
const (
	KubernetesVersion  = "v1.37.2"
	StagingVersion     = "v0.37.2" // version of the k8s.io/<staging> modules for KubernetesVersion
	KindVersion        = "v0.33.0"
	ContainerdVersion  = "v2.3.4"
	RuncVersion        = "v1.4.3"
	CrictlVersion      = "v1.36.0"
	CNIPluginsVersion  = "v1.9.1"
	EtcdVersion        = "v3.7.0"
	CoreDNSVersion     = "v1.14.6"
	PauseVersionSuffix = "-devenv" // appended to the pause version compiled into the binary

	// Name and Ref of the stand-in.
	Name = "kind-node"
	Ref  = standin.Registry + "/kind-node:" + KubernetesVersion

	// builderRevision changes whenever this builder changes what it produces.
	builderRevision = "1"
)

// kubernetesBinaries are built from the Kubernetes source tree, in this order.
var kubernetesBinaries = []string{
	"kubeadm", "kubectl", "kubelet", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy",
}

//go:embed files
var embedded embed.FS

// StandIn describes the kind node image stand-in.
func StandIn() standin.StandIn {
	return standin.StandIn{
		Name:  Name,
		Ref:   Ref,
		For:   "kindest/node",
		Needs: []string{debian.Name},
		Prereqs: []standin.Prereq{
			{Command: "go", Package: "golang"},
			{Command: "gcc", Package: "gcc"},
			{Command: "/usr/include/seccomp.h", Package: "libseccomp-dev"},
			{Command: "pkg-config", Package: "pkg-config"},
			{Command: "debootstrap", Package: "debootstrap"},
			{Command: "strip", Package: "binutils"},
		},
		Recipe: Recipe,
		Build:  Build,
	}
}

// Recipe lists every input of the node image: versions, the embedded files'
// hashes, the Debian base's recipe and the builder revision.
func Recipe() ([]string, error) {
	files, err := embeddedFiles()
	if err != nil {
		return nil, err
	}
	base, err := debian.StandIn().Recipe()
	if err != nil {
		return nil, err
	}
	out := []string{
		"kind-node", "builder=" + builderRevision,
		"kubernetes=" + KubernetesVersion, "staging=" + StagingVersion, "kind=" + KindVersion,
		"containerd=" + ContainerdVersion, "runc=" + RuncVersion, "crictl=" + CrictlVersion,
		"cni-plugins=" + CNIPluginsVersion, "etcd=" + EtcdVersion, "coredns=" + CoreDNSVersion,
		"debian-base=" + standin.Hash(base),
	}
	return append(out, standin.HashFiles(files)...), nil
}

// embeddedFiles returns the embedded files by base name.
func embeddedFiles() (map[string][]byte, error) {
	out := map[string][]byte{}
	err := fs.WalkDir(embedded, "files", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := embedded.ReadFile(p)
		if err != nil {
			return err
		}
		out[strings.TrimPrefix(p, "files/")] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading embedded files: %w", err)
	}
	return out, nil
}

func mustFile(name string) []byte {
	b, err := embedded.ReadFile("files/" + name)
	if err != nil {
		panic(fmt.Sprintf("embedded file %s missing: %v", name, err)) // a build defect, caught by tests
	}
	return b
}

// Build builds the node image and tags it Ref with labels. The Debian base
// stand-in (debian.Ref) must exist already.
func Build(ctx context.Context, env *standin.Env, labels map[string]string) error {
	b := &builder{env: env, root: filepath.Join(env.CacheDir, "kind-node", KubernetesVersion)}
	steps := []func(context.Context) error{
		b.kubernetesSource,
		b.kubernetesBinaries,
		b.runtimeBinaries,
		b.images,
	}
	for _, s := range steps {
		if err := s(ctx); err != nil {
			return err
		}
	}
	return b.assemble(ctx, labels)
}
