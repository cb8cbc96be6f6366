package kindnode

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// kubernetesSource assembles a buildable Kubernetes tree in k8s-src: the
// k8s.io/kubernetes module, with every staging module k8s.io/<name> the
// repository's go.mod replaces with ./staging/src/k8s.io/<name> copied there
// from its published module. The repository's go.mod then applies unchanged.
func (b *builder) kubernetesSource(ctx context.Context) error {
	src := b.dir("k8s-src")
	inputs := []string{"k8s-src", builderRevision, KubernetesVersion, StagingVersion}
	return b.cached(ctx, "k8s-src", "assembling the Kubernetes "+KubernetesVersion+" source tree", inputs, []string{src}, func(ctx context.Context) error {
		k, err := b.moduleDir(ctx, "k8s.io/kubernetes@"+KubernetesVersion)
		if err != nil {
			return err
		}
		if err := b.copyTree(ctx, k.Dir, src); err != nil {
			return err
		}
		names, err := stagingModules(filepath.Join(src, "go.mod"))
		if err != nil {
			return err
		}
		mods := make([]string, len(names))
		for i, n := range names {
			mods[i] = "k8s.io/" + n + "@" + StagingVersion
		}
		got, err := b.download(ctx, b.root, mods...)
		if err != nil {
			return fmt.Errorf("downloading staging modules: %w", err)
		}
		for i, m := range got {
			if m.Dir == "" {
				if strings.HasPrefix(names[i], "sample-") {
					// sample-cli-plugin and sample-controller are not published, and no binary needs them.
					continue
				}
				return fmt.Errorf("staging module %s is not on the module proxy: %s", mods[i], m.Error)
			}
			if err := b.copyTree(ctx, m.Dir, filepath.Join(src, "staging", "src", "k8s.io", names[i])); err != nil {
				return err
			}
		}
		for _, f := range []string{"go.work", "go.work.sum"} {
			_ = os.Remove(filepath.Join(src, f))
		}
		return nil
	})
}

// buildDate is stamped into the Kubernetes binaries: a fixed date (the Unix
// epoch, as with SOURCE_DATE_EPOCH=0) keeps rebuilds reproducible.
const buildDate = "1970-01-01T00:00:00Z"

// stagingModules returns the names of the k8s.io modules go.mod replaces with ./staging/src/k8s.io/<name>.
func stagingModules(gomod string) ([]string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", gomod, err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		line = strings.TrimPrefix(line, "replace ")
		_, target, ok := strings.Cut(line, "=>")
		if !ok {
			continue
		}
		target = strings.TrimSpace(target)
		if name, ok := strings.CutPrefix(target, "./staging/src/k8s.io/"); ok {
			names = append(names, strings.Fields(name)[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", gomod, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no replace directives pointing at ./staging/src/k8s.io: not a Kubernetes source tree", gomod)
	}
	return names, nil
}

// versionLDFlags are the -ldflags that stamp the Kubernetes version into a binary
// the way the Kubernetes release build does.
func versionLDFlags(version, buildDate string) string {
	minor := strings.SplitN(strings.TrimPrefix(version, "v1."), ".", 2)[0]
	flags := []string{"-s", "-w"}
	for _, p := range []string{"k8s.io/client-go/pkg/version", "k8s.io/component-base/version"} {
		flags = append(flags,
			"-X", p+".gitVersion="+version,
			"-X", p+".gitMajor=1",
			"-X", p+".gitMinor="+minor,
			"-X", p+".gitTreeState=clean",
			"-X", p+".gitCommit=0000000000000000000000000000000000000000",
			"-X", p+".buildDate="+buildDate,
		)
	}
	return strings.Join(flags, " ")
}

// kubernetesBinaries builds static Kubernetes binaries into k8s-bin, one stamped step per binary.
func (b *builder) kubernetesBinaries(ctx context.Context) error {
	src := b.dir("k8s-src")
	out := b.dir("k8s-bin")
	ld := versionLDFlags(KubernetesVersion, buildDate)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", out, err)
	}
	for _, name := range kubernetesBinaries {
		bin := filepath.Join(out, name)
		inputs := []string{"k8s-bin", builderRevision, KubernetesVersion, StagingVersion, ld, name}
		err := b.cached(ctx, "k8s-bin/"+name, "building "+name+" "+KubernetesVersion, inputs, []string{bin}, func(ctx context.Context) error {
			return b.goRun(ctx, src, []string{"CGO_ENABLED=0", "GOOS=linux"},
				"build", "-trimpath", "-tags", "providerless", "-ldflags", ld, "-o", bin, "./cmd/"+name)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
