package kindnode

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/execx"
	"github.com/devenv-tool/devenv/internal/images/debian"
	"github.com/devenv-tool/devenv/internal/images/standin"
)

// imagePrefix is put in front of the registry.k8s.io names while the
// control-plane images live in the Docker engine: devenv never tags an image
// under a real registry's name there. Inside the node they are re-tagged.
const imagePrefix = standin.Registry + "/"

// controlPlaneImage is one image kubeadm (or containerd, for pause) wants preloaded.
type controlPlaneImage struct {
	ref        string // what kubeadm asks for, e.g. registry.k8s.io/kube-apiserver:v1.37.2
	dockerfile string
	files      []tarEntry
	inputs     []string // stamps of the binaries it contains
}

// kubeadmImages returns the images kubeadm KubernetesVersion asks for.
func (b *builder) kubeadmImages(ctx context.Context) ([]string, error) {
	out, err := execx.Output(ctx, execx.Cmd{Args: []string{filepath.Join(b.dir("k8s-bin"), "kubeadm"),
		"config", "images", "list", "--kubernetes-version", KubernetesVersion}})
	if err != nil {
		return nil, fmt.Errorf("asking kubeadm for its images: %w", err)
	}
	refs := strings.Fields(string(out))
	if len(refs) == 0 {
		return nil, fmt.Errorf("kubeadm config images list printed no images")
	}
	return refs, nil
}

// imageName is the last path element of ref without tag: registry.k8s.io/coredns/coredns:v1 -> coredns.
func imageName(ref string) string {
	name := path.Base(ref)
	if i := strings.LastIndex(name, ":"); i >= 0 {
		name = name[:i]
	}
	return name
}

// scratchDockerfile is the Dockerfile of an image holding one static binary.
func scratchDockerfile(target string) string {
	return "FROM scratch\nCOPY bin " + target + "\nENV PATH=/usr/local/bin:/usr/bin:/bin\nENTRYPOINT [\"" + target + "\"]\n"
}

// kubeProxyDockerfile puts kube-proxy on the Debian base, which has iptables,
// nftables and conntrack; the wrapper picks the iptables backend.
const kubeProxyDockerfile = `FROM ` + debian.Ref + `
COPY kube-proxy /usr/local/bin/kube-proxy
COPY iptables-wrapper /usr/sbin/iptables-wrapper
RUN for t in iptables ip6tables; do for s in "" -save -restore; do ln -sf /usr/sbin/iptables-wrapper /usr/sbin/$t$s; done; done
ENTRYPOINT ["/usr/local/bin/kube-proxy"]
`

// planImages maps kubeadm's image list to what builds each image.
func (b *builder) planImages(refs []string) ([]controlPlaneImage, error) {
	kb, rb := b.dir("k8s-bin"), b.dir("rt-bin")
	scratch := map[string]struct{ bin, stamp, target string }{
		"kube-apiserver":          {filepath.Join(kb, "kube-apiserver"), "k8s-bin/kube-apiserver", "/usr/local/bin/kube-apiserver"},
		"kube-controller-manager": {filepath.Join(kb, "kube-controller-manager"), "k8s-bin/kube-controller-manager", "/usr/local/bin/kube-controller-manager"},
		"kube-scheduler":          {filepath.Join(kb, "kube-scheduler"), "k8s-bin/kube-scheduler", "/usr/local/bin/kube-scheduler"},
		"etcd":                    {filepath.Join(rb, "etcd", "etcd"), "rt-bin/etcd", "/usr/local/bin/etcd"},
		"coredns":                 {filepath.Join(rb, "coredns", "coredns"), "rt-bin/coredns", "/coredns"},
		"pause":                   {filepath.Join(rb, "pause", "pause"), "rt-bin/pause", "/pause"},
	}
	var out []controlPlaneImage
	for _, ref := range refs {
		name := imageName(ref)
		if s, ok := scratch[name]; ok {
			df := scratchDockerfile(s.target)
			out = append(out, controlPlaneImage{ref: ref, dockerfile: df,
				files:  []tarEntry{{name: "bin", mode: 0o755, src: s.bin}},
				inputs: []string{df, b.stampOf(s.stamp)}})
			continue
		}
		if name == "kube-proxy" {
			out = append(out, controlPlaneImage{ref: ref, dockerfile: kubeProxyDockerfile,
				files: []tarEntry{
					{name: "kube-proxy", mode: 0o755, src: filepath.Join(kb, "kube-proxy")},
					{name: "iptables-wrapper", mode: 0o755, data: mustFile("iptables-wrapper")},
				},
				inputs: []string{kubeProxyDockerfile, b.stampOf("k8s-bin/kube-proxy"), string(mustFile("iptables-wrapper"))}})
			continue
		}
		return nil, fmt.Errorf("kubeadm %s asks for image %s, which this builder does not know how to build", KubernetesVersion, ref)
	}
	return out, nil
}

// stampOf returns the recorded input hash of a finished step ("" if none).
func (b *builder) stampOf(id string) string {
	s, _ := os.ReadFile(filepath.Join(b.root, "stamps", strings.ReplaceAll(id, "/", "_")))
	return string(s)
}

// images builds the control-plane images through the Docker API and saves
// each one to image-tars/<name>.tar.
func (b *builder) images(ctx context.Context) error {
	refs, err := b.kubeadmImages(ctx)
	if err != nil {
		return err
	}
	plan, err := b.planImages(refs)
	if err != nil {
		return err
	}
	base, err := b.env.Docker.ImageInspect(ctx, debian.Ref)
	if err != nil {
		return fmt.Errorf("the Debian base image %s is needed first: %w", debian.Ref, err)
	}
	out := b.dir("image-tars")
	inputs := []string{"image-tars", builderRevision, base.ID}
	for _, p := range plan {
		inputs = append(inputs, p.ref)
		inputs = append(inputs, p.inputs...)
	}
	sort.Strings(inputs[3:])
	return b.cached(ctx, "image-tars", "building and saving the control-plane images", inputs, []string{out}, func(ctx context.Context) error {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", out, err)
		}
		for _, p := range plan {
			if err := b.buildAndSave(ctx, p, filepath.Join(out, imageName(p.ref)+".tar")); err != nil {
				return err
			}
		}
		return nil
	})
}

func (b *builder) buildAndSave(ctx context.Context, p controlPlaneImage, file string) error {
	tag := imagePrefix + p.ref
	files := append([]tarEntry{{name: "Dockerfile", mode: 0o644, data: []byte(p.dockerfile)}}, p.files...)
	body := tarStream(files)
	defer body.Close()
	res, err := b.env.Docker.ImageBuild(ctx, body, client.ImageBuildOptions{
		Tags: []string{tag}, Remove: true, ForceRemove: true, Version: build.BuilderV1, Dockerfile: "Dockerfile",
	})
	if err != nil {
		return fmt.Errorf("building %s: %w", tag, err)
	}
	err = debian.ReadMessages(res.Body, b.output())
	res.Body.Close()
	if err != nil {
		return fmt.Errorf("building %s: %w", tag, err)
	}
	rc, err := b.env.Docker.ImageSave(ctx, []string{tag})
	if err != nil {
		return fmt.Errorf("saving %s: %w", tag, err)
	}
	defer rc.Close()
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("saving %s: %w", tag, err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return fmt.Errorf("saving %s to %s: %w", tag, file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("saving %s to %s: %w", tag, file, err)
	}
	// The tar is what the node needs; the engine keeps no copy under a registry.k8s.io-like name.
	if _, err := b.env.Docker.ImageRemove(ctx, tag, client.ImageRemoveOptions{PruneChildren: true}); err != nil {
		b.warnf("removing the intermediate image %s: %v", tag, err)
	}
	return nil
}
