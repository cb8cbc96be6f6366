package devenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"path"
	"slices"
	"strconv"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/registry"
)

// LocalRegistryImage is the image of registry: local's container (offline:
// the stand-in devenv.local/registry:3).
const LocalRegistryImage = "registry:3"

// errNoHostFiles means the cluster's containerd reads no registry host
// files: it cannot pull from the local registry.
var errNoHostFiles = errors.New("the nodes cannot pull from a local registry")

// componentRegistry is the LabelComponent of registry: local's container.
const componentRegistry = "registry"

// registryPort is the port the registry serves on inside its container.
const registryPort = "5000/tcp"

// ensureLocalRegistry runs registry: local's container on the kind network,
// published on a loopback port that is chosen once and kept (the port is
// part of every image name), with its blobs in a volume of its own. It
// returns a copy of e.Config whose registry is localhost:PORT.
func (e *Env) ensureLocalRegistry(ctx context.Context) (*config.Config, error) {
	cfg := e.Config
	id := ProjectID(cfg)
	name := id.ContainerName(componentRegistry)
	done := e.prog.start("local registry (%s)", name)
	port, err := e.runLocalRegistry(ctx, name)
	done(err, "local registry %s at localhost:%d (nodes: %s:5000)", name, port, name)
	if err != nil {
		return nil, err
	}
	cp := *cfg
	r := *cfg.Registry
	r.Host = "localhost:" + strconv.Itoa(port)
	cp.Registry = &r
	return &cp, nil
}

func (e *Env) runLocalRegistry(ctx context.Context, name string) (int, error) {
	if port, ok, err := e.startedRegistry(ctx, name); err != nil || ok {
		return port, err
	}
	img, err := e.resolver.Resolve(ctx, LocalRegistryImage)
	if err != nil {
		return 0, fmt.Errorf("registry: local: %w", err)
	}
	port := freePort()
	if port == 0 {
		return 0, fmt.Errorf("registry: local: no free port on 127.0.0.1")
	}
	id := ProjectID(e.Config)
	labels := id.Labels(componentRegistry)
	_, err = e.docker.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:        img.Ref,
			Labels:       labels,
			ExposedPorts: network.PortSet{network.MustParsePort(registryPort): {}},
		},
		HostConfig: &container.HostConfig{
			PortBindings: network.PortMap{network.MustParsePort(registryPort): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(port)}}},
			// The blobs outlive the container: a new one reuses them.
			Mounts:        []mount.Mount{{Type: mount.TypeVolume, Source: name + "-data", Target: "/var/lib/registry", VolumeOptions: &mount.VolumeOptions{Labels: labels}}},
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{cluster.NetworkName: {}}},
	})
	if err != nil {
		return 0, fmt.Errorf("creating the local registry container %s: %w", name, err)
	}
	if _, err := e.docker.ContainerStart(ctx, name, client.ContainerStartOptions{}); err != nil {
		return 0, fmt.Errorf("starting the local registry container %s: %w", name, err)
	}
	return port, nil
}

// startedRegistry finds the registry container name and starts it when it
// is stopped; ok is false when there is none. Its port is the one it was
// created with.
func (e *Env) startedRegistry(ctx context.Context, name string) (port int, ok bool, err error) {
	ins, err := e.docker.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("inspecting the local registry container %s: %w", name, err)
	}
	c := ins.Container
	for _, b := range c.HostConfig.PortBindings[network.MustParsePort(registryPort)] {
		if p, err := strconv.Atoi(b.HostPort); err == nil && p > 0 {
			port = p
		}
	}
	if port == 0 {
		return 0, false, fmt.Errorf("the local registry container %s publishes no fixed port: remove it (devenv down) and run devenv up again", name)
	}
	if c.State == nil || !c.State.Running {
		if _, err := e.docker.ContainerStart(ctx, name, client.ContainerStartOptions{}); err != nil {
			return 0, false, fmt.Errorf("starting the local registry container %s: %w", name, err)
		}
	}
	return port, true, nil
}

// wireLocalRegistry points the nodes of c (devenv's kind cluster) at the
// local registry container and writes the KEP-1755 ConfigMap so that other
// tools (Tilt, Skaffold, ctlptl) find it.
func (e *Env) wireLocalRegistry(ctx context.Context, c *cluster.Cluster) error {
	cfg := e.Config
	name := ProjectID(cfg).ContainerName(componentRegistry)
	kc, err := registry.KindContainerd(cfg.Registry.Host, name+":5000")
	if err != nil {
		return err
	}
	// The images keep their devenv.local names: the nodes pull those from
	// the registry container too.
	kc.Files[path.Join(registry.CertsDir, build.Registry, "hosts.toml")] = kc.Files[path.Join(registry.CertsDir, cfg.Registry.Host, "hosts.toml")]
	cm := registry.HostingConfigMap(cfg.Registry.Host, name+":5000")
	// The ConfigMap is written last and names the node files it follows:
	// when both are as they would be written now, the cluster is wired.
	cm.Annotations = map[string]string{annotationNodeFiles: filesDigest(kc.Files)}
	cms := c.Client.CoreV1().ConfigMaps(cm.Namespace)
	if cur, err := cms.Get(ctx, cm.Name, metav1.GetOptions{}); err == nil && maps.Equal(cur.Data, cm.Data) && cur.Annotations[annotationNodeFiles] == cm.Annotations[annotationNodeFiles] {
		return nil
	}
	done := e.prog.start("wiring the local registry into cluster %s", cfg.Cluster.Name)
	err = func() error {
		ok, err := c.ReadsHostFiles(ctx, e.docker, registry.CertsDir)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: cluster %s was created before devenv set its nodes up for a registry (containerd reads no %s): run devenv down, then devenv up, to create it again", errNoHostFiles, cfg.Cluster.Name, registry.CertsDir)
		}
		if err := c.WriteNodeFiles(ctx, e.docker, kc.Files); err != nil {
			return err
		}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
			_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
			return err
		} else if err != nil {
			return fmt.Errorf("writing ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
		}
		return nil
	}()
	done(err, "")
	return err
}

// annotationNodeFiles, on the KEP-1755 ConfigMap, is the digest of the
// registry host files devenv wrote on the nodes before it.
const annotationNodeFiles = "devenv.dev/node-files"

// filesDigest is a digest of files (path and content), in path order.
func filesDigest(files map[string][]byte) string {
	h := sha256.New()
	for _, p := range slices.Sorted(maps.Keys(files)) {
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(files[p]))
		h.Write(files[p])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
