// Package debian builds devenv's Debian base stand-in image
// (devenv.local/debian-base:bookworm) with debootstrap, without pulling from
// any registry. The kind node image, kube-proxy and the JRE and H2 stand-ins
// are built on top of it.
package debian

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/execx"
	"github.com/devenv-tool/devenv/internal/images/standin"
)

// Name, Ref and Suite of the Debian base stand-in.
const (
	Name  = "debian-base"
	Ref   = standin.Registry + "/debian-base:bookworm"
	Suite = "bookworm"
	// DefaultMirror is used when neither DEVENV_DEBIAN_MIRROR nor the host's
	// apt sources name a Debian mirror.
	DefaultMirror = "http://deb.debian.org/debian"
	// MirrorEnv overrides the mirror debootstrap downloads from.
	MirrorEnv = "DEVENV_DEBIAN_MIRROR"
	// revision changes whenever this builder changes what it produces.
	revision = "1"
)

// Packages are installed on top of debootstrap's minbase variant: what the
// kind node image (systemd, networking, container runtime helpers) needs.
var packages = []string{
	"systemd", "dbus", "conntrack", "iptables", "nftables", "iproute2", "ethtool",
	"util-linux", "mount", "kmod", "libseccomp2", "pigz", "bash", "ca-certificates",
	"curl", "jq", "procps", "e2fsprogs", "iputils-ping", "netcat-openbsd",
}

// StandIn describes the Debian base image.
func StandIn() standin.StandIn {
	return standin.StandIn{
		Name:    Name,
		Ref:     Ref,
		For:     "",
		Prereqs: []standin.Prereq{{Command: "debootstrap", Package: "debootstrap"}, {Command: "tar", Package: "tar"}},
		Recipe: func() ([]string, error) {
			mirror := Mirror(os.Getenv, "/etc/apt")
			return []string{"debian-base", revision, Suite, "minbase", strings.Join(packages, ","), mirror}, nil
		},
		Build: build,
	}
}

// Mirror returns the Debian mirror to use: $DEVENV_DEBIAN_MIRROR, else the first
// Debian mirror found in the apt sources under aptDir, else DefaultMirror.
func Mirror(getenv func(string) string, aptDir string) string {
	if m := strings.TrimSpace(getenv(MirrorEnv)); m != "" {
		return strings.TrimRight(m, "/")
	}
	if m := mirrorFromApt(aptDir); m != "" {
		return m
	}
	return DefaultMirror
}

// mirrorFromApt looks at sources.list (one-line format) and sources.list.d/*.sources
// (deb822 format) for a URI ending in /debian (not debian-security).
func mirrorFromApt(aptDir string) string {
	files := []string{filepath.Join(aptDir, "sources.list")}
	more, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", "*.list"))
	deb822, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", "*.sources"))
	sort.Strings(more)
	sort.Strings(deb822)
	files = append(files, deb822...)
	files = append(files, more...)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			var uris []string
			switch {
			case len(fields) >= 2 && fields[0] == "URIs:":
				uris = fields[1:]
			case len(fields) >= 3 && fields[0] == "deb":
				for _, f := range fields[1:] {
					if !strings.HasPrefix(f, "[") && !strings.HasSuffix(f, "]") {
						uris = append(uris, f)
						break
					}
				}
			}
			for _, u := range uris {
				u = strings.TrimRight(u, "/")
				if strings.HasPrefix(u, "http") && strings.HasSuffix(u, "/debian") {
					return u
				}
			}
		}
	}
	return ""
}

func build(ctx context.Context, env *standin.Env, labels map[string]string) error {
	mirror := Mirror(os.Getenv, "/etc/apt")
	work := filepath.Join(env.CacheDir, "debian-base")
	root := filepath.Join(work, "rootfs")
	tarball := filepath.Join(work, "rootfs.tar")
	if err := os.RemoveAll(work); err != nil {
		return fmt.Errorf("cleaning %s: %w", work, err)
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", work, err)
	}
	// The rootfs is only an intermediate: the image is the product.
	defer os.RemoveAll(work)

	step(env, "debootstrap "+Suite+" (minbase) from "+mirror)
	if err := execx.Run(ctx, execx.Cmd{
		Args:   []string{"debootstrap", "--variant=minbase", "--include=" + strings.Join(packages, ","), Suite, root, mirror},
		Stream: env.Output,
	}); err != nil {
		return fmt.Errorf("running debootstrap: %w", err)
	}

	step(env, "trimming the Debian rootfs")
	if err := execx.Run(ctx, execx.Cmd{Args: []string{"chroot", root, "apt-get", "clean"}, Stream: env.Output}); err != nil {
		return fmt.Errorf("cleaning apt cache: %w", err)
	}
	if err := trim(root, mirror); err != nil {
		return err
	}

	step(env, "importing the rootfs as "+Ref)
	if err := execx.Run(ctx, execx.Cmd{Args: []string{"tar", "--numeric-owner", "-C", root, "-cf", tarball, "."}}); err != nil {
		return fmt.Errorf("packing rootfs: %w", err)
	}
	return importTar(ctx, env.Docker, tarball, Ref, labels)
}

// trim removes documentation, locales and apt lists, and points apt at the mirror.
func trim(root, mirror string) error {
	for _, dir := range []string{"var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale", "var/cache/apt/archives"} {
		entries, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.Name() == "lock" || e.Name() == "partial" {
				continue
			}
			if err := os.RemoveAll(filepath.Join(root, dir, e.Name())); err != nil {
				return fmt.Errorf("trimming rootfs: %w", err)
			}
		}
	}
	sources := fmt.Sprintf("deb %s %s main\n", mirror, Suite)
	if err := os.WriteFile(filepath.Join(root, "etc/apt/sources.list"), []byte(sources), 0o644); err != nil {
		return fmt.Errorf("writing sources.list: %w", err)
	}
	return nil
}

// importTar imports a rootfs tarball as image ref with the given labels.
func importTar(ctx context.Context, docker *client.Client, tarball, ref string, labels map[string]string) error {
	f, err := os.Open(tarball)
	if err != nil {
		return fmt.Errorf("opening %s: %w", tarball, err)
	}
	defer f.Close()
	res, err := docker.ImageImport(ctx, client.ImageImportSource{Source: f, SourceName: "-"}, ref,
		client.ImageImportOptions{Changes: LabelChanges(labels), Message: "devenv debian-base stand-in"})
	if err != nil {
		return fmt.Errorf("importing %s: %w", ref, err)
	}
	defer res.Close()
	if err := ReadMessages(res, nil); err != nil {
		return fmt.Errorf("importing %s: %w", ref, err)
	}
	return nil
}

// LabelChanges turns labels into Dockerfile LABEL instructions for import/commit changes.
func LabelChanges(labels map[string]string) []string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, fmt.Sprintf("LABEL %s=%q", k, labels[k]))
	}
	return out
}

func step(env *standin.Env, s string) {
	if env.Step != nil {
		env.Step(s)
	}
}

// ReadMessages reads the JSON message stream the Docker API returns for
// builds, imports and loads, copies the output text to out (when not nil)
// and returns the first error message in the stream.
func ReadMessages(r io.Reader, out io.Writer) error {
	return dockerx.ReadStream(r, dockerx.StreamOptions{Out: out})
}
