package kindnode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// runtimeBinary is one program (or set of programs) of the node's container
// runtime or control plane built from a published Go module.
type runtimeBinary struct {
	name    string   // step name, also the sub folder of rt-bin
	module  string   // module@version whose source is built ("" for custom steps)
	version string   // for the recipe
	outputs []string // file names in rt-bin/<name>
	build   func(ctx context.Context, b *builder, src, out string) error
}

func runtimeBinaries() []runtimeBinary {
	return []runtimeBinary{
		{name: "containerd", module: "github.com/containerd/containerd/v2@" + ContainerdVersion, version: ContainerdVersion,
			outputs: []string{"containerd", "ctr", "containerd-shim-runc-v2"},
			build: func(ctx context.Context, b *builder, src, out string) error {
				pkg := "github.com/containerd/containerd/v2/version"
				ld := "-s -w -X " + pkg + ".Version=" + ContainerdVersion + " -X " + pkg + ".Revision=devenv -X " + pkg + ".Package=github.com/containerd/containerd/v2"
				for _, c := range []string{"containerd", "ctr", "containerd-shim-runc-v2"} {
					if err := b.goRun(ctx, src, []string{"CGO_ENABLED=0"}, "build", "-trimpath",
						"-tags", "no_aufs no_zfs no_btrfs no_devmapper", "-ldflags", ld, "-o", filepath.Join(out, c), "./cmd/"+c); err != nil {
						return err
					}
				}
				return nil
			}},
		// runc needs cgo (nsenter) and libseccomp; it links against the host's
		// bookworm glibc and libseccomp2, which the bookworm node image also has.
		{name: "runc", module: "github.com/opencontainers/runc@" + RuncVersion, version: RuncVersion, outputs: []string{"runc"},
			build: func(ctx context.Context, b *builder, src, out string) error {
				ld := "-s -w -X main.version=" + strings.TrimPrefix(RuncVersion, "v") + " -X main.gitCommit=devenv"
				return b.goRun(ctx, src, []string{"CGO_ENABLED=1"}, "build", "-trimpath",
					"-tags", "seccomp urfave_cli_no_docs", "-ldflags", ld, "-o", filepath.Join(out, "runc"), ".")
			}},
		{name: "crictl", module: "sigs.k8s.io/cri-tools@" + CrictlVersion, version: CrictlVersion, outputs: []string{"crictl"},
			build: func(ctx context.Context, b *builder, src, out string) error {
				ld := "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=" + CrictlVersion
				return b.goRun(ctx, src, []string{"CGO_ENABLED=0"}, "build", "-trimpath", "-ldflags", ld,
					"-o", filepath.Join(out, "crictl"), "./cmd/crictl")
			}},
		{name: "cni", module: "github.com/containernetworking/plugins@" + CNIPluginsVersion, version: CNIPluginsVersion,
			outputs: []string{"host-local", "loopback", "ptp", "bridge", "portmap"},
			build: func(ctx context.Context, b *builder, src, out string) error {
				for _, p := range []string{"ipam/host-local", "main/loopback", "main/ptp", "main/bridge", "meta/portmap"} {
					if err := b.goRun(ctx, src, []string{"CGO_ENABLED=0"}, "build", "-trimpath", "-ldflags", "-s -w",
						"-o", filepath.Join(out, filepath.Base(p)), "./plugins/"+p); err != nil {
						return err
					}
				}
				return nil
			}},
		// etcd's root module has local replace directives, so a tiny main
		// around the published server module's etcdmain is built instead.
		{name: "etcd", version: EtcdVersion, outputs: []string{"etcd"},
			build: func(ctx context.Context, b *builder, _, out string) error {
				src := b.dir("src/etcd-wrapper")
				if err := os.RemoveAll(src); err != nil {
					return fmt.Errorf("removing %s: %w", src, err)
				}
				if err := os.MkdirAll(src, 0o755); err != nil {
					return fmt.Errorf("creating %s: %w", src, err)
				}
				if err := os.WriteFile(filepath.Join(src, "main.go"), mustFile("etcd-main.go.txt"), 0o644); err != nil {
					return fmt.Errorf("writing etcd wrapper: %w", err)
				}
				if err := b.goRun(ctx, src, nil, "mod", "init", "devenv.local/etcd"); err != nil {
					return err
				}
				if err := b.goRun(ctx, src, nil, "get", "go.etcd.io/etcd/server/v3@"+EtcdVersion); err != nil {
					return err
				}
				if err := b.goRun(ctx, src, nil, "mod", "tidy"); err != nil {
					return err
				}
				return b.goRun(ctx, src, []string{"CGO_ENABLED=0"}, "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(out, "etcd"), ".")
			}},
		{name: "coredns", module: "github.com/coredns/coredns@" + CoreDNSVersion, version: CoreDNSVersion, outputs: []string{"coredns"},
			build: func(ctx context.Context, b *builder, src, out string) error {
				return b.goRun(ctx, src, []string{"CGO_ENABLED=0"}, "build", "-trimpath",
					"-ldflags", "-s -w -X github.com/coredns/coredns/coremain.GitCommit=devenv", "-o", filepath.Join(out, "coredns"), ".")
			}},
		// pause is C: a static build of build/pause/linux/pause.c from the Kubernetes tree.
		{name: "pause", version: KubernetesVersion, outputs: []string{"pause"},
			build: func(ctx context.Context, b *builder, _, out string) error {
				c := filepath.Join(b.dir("k8s-src"), "build", "pause", "linux", "pause.c")
				bin := filepath.Join(out, "pause")
				if err := b.run(ctx, "", nil, "gcc", "-Os", "-Wall", "-Werror", "-static",
					"-DVERSION="+pauseVersion()+PauseVersionSuffix, "-o", bin, c); err != nil {
					return err
				}
				return b.run(ctx, "", nil, "strip", bin)
			}},
	}
}

// pauseVersion is the pause tag kubeadm KubernetesVersion asks for, without the "v".
func pauseVersion() string { return "3.10.2" }

// runtimeBinaries builds every runtimeBinary into rt-bin/<name>, one stamped step each.
func (b *builder) runtimeBinaries(ctx context.Context) error {
	for _, rb := range runtimeBinaries() {
		out := b.dir(filepath.Join("rt-bin", rb.name))
		inputs := []string{"rt-bin", builderRevision, rb.name, rb.module, rb.version}
		if rb.name == "etcd" {
			inputs = append(inputs, string(mustFile("etcd-main.go.txt")))
		}
		err := b.cached(ctx, "rt-bin/"+rb.name, "building "+rb.name+" "+rb.version, inputs, []string{out}, func(ctx context.Context) error {
			if err := os.MkdirAll(out, 0o755); err != nil {
				return fmt.Errorf("creating %s: %w", out, err)
			}
			var src string
			if rb.module != "" {
				m, err := b.moduleDir(ctx, rb.module)
				if err != nil {
					return err
				}
				src = b.dir(filepath.Join("src", rb.name))
				if err := b.copyTree(ctx, m.Dir, src); err != nil {
					return err
				}
				defer os.RemoveAll(src)
			}
			if err := rb.build(ctx, b, src, out); err != nil {
				return err
			}
			for _, o := range rb.outputs {
				if _, err := os.Stat(filepath.Join(out, o)); err != nil {
					return fmt.Errorf("%s was not built: %w", o, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
