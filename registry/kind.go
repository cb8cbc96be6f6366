package registry

import (
	"errors"
	"fmt"
	"net"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// CertsDir is the folder of containerd's per-registry host files on a kind
// node (hosts.toml, see containerd's docs/hosts.md).
const CertsDir = "/etc/containerd/certs.d"

// KindNodeConfig is what a kind cluster needs so that its nodes pull the
// images named HOST/... from a registry container on the kind network.
type KindNodeConfig struct {
	// ContainerdConfigPatches go into the cluster config at creation
	// (v1alpha4.Cluster.ContainerdConfigPatches): they point the CRI
	// plugin at CertsDir. There is one per containerd config version;
	// kind applies the one matching the node's.
	ContainerdConfigPatches []string
	// Files are written on every node once it runs (absolute path ->
	// content): a hosts.toml per registry name that sends pulls to the
	// registry container. containerd reads them at each pull: no restart.
	Files map[string][]byte
}

// KindContainerd returns the kind configuration for a registry pushed to
// as host (HOST:PORT, e.g. "localhost:5001") and reached from the nodes at
// endpoint (the registry container's name and port on the kind network,
// e.g. "devenv-registry:5000"), which serves plain HTTP. Images named
// host/... and endpoint/... are both pulled from endpoint.
func KindContainerd(host, endpoint string) (KindNodeConfig, error) {
	for _, a := range []string{host, endpoint} {
		if err := checkHostPort(a); err != nil {
			return KindNodeConfig{}, err
		}
	}
	cfg := KindNodeConfig{
		ContainerdConfigPatches: KindContainerdPatches(),
		Files:                   map[string][]byte{},
	}
	hosts := []byte("# written by devenv: pull from the registry container\n[host.\"http://" + endpoint + "\"]\n  capabilities = [\"pull\", \"resolve\"]\n")
	for _, a := range []string{host, endpoint} {
		cfg.Files[path.Join(CertsDir, a, "hosts.toml")] = hosts
	}
	return cfg, nil
}

// KindContainerdPatches are the containerd config patches that make a kind
// node read per-registry host files from CertsDir: one per containerd
// config version (kind applies the one matching the node's). Without host
// files there, pulls go where they always did.
func KindContainerdPatches() []string {
	return []string{
		// containerd 1.x and 2.x with a version 2 config
		"version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"" + CertsDir + "\"\n",
		// containerd 2.x with a version 3 config
		"version = 3\n[plugins.\"io.containerd.cri.v1.images\".registry]\n  config_path = \"" + CertsDir + "\"\n",
	}
}

// checkHostPort accepts HOST:PORT with no scheme or path.
func checkHostPort(a string) error {
	h, p, err := net.SplitHostPort(a)
	if err != nil || h == "" || p == "" || strings.ContainsAny(a, "/ \"\n") {
		return fmt.Errorf("registry address %q: want HOST:PORT (no scheme, no path)", a)
	}
	return nil
}

// The KEP-1755 ConfigMap that tells other tools (Tilt, Skaffold, ctlptl)
// where a cluster's local registry is.
const (
	HostingNamespace = "kube-public"
	HostingName      = "local-registry-hosting"
	HostingKey       = "localRegistryHosting.v1"
	// HostingHelp is the documentation the ConfigMap points to.
	HostingHelp = "https://kind.sigs.k8s.io/docs/user/local-registry/"
)

// Hosting is the content of the KEP-1755 ConfigMap
// (LocalRegistryHostingV1).
type Hosting struct {
	// Host is where a tool on this machine pushes (e.g. "localhost:5001").
	Host string `json:"host"`
	// HostFromContainerRuntime is the name the nodes' container runtime
	// pulls from.
	HostFromContainerRuntime string `json:"hostFromContainerRuntime,omitempty"`
	// HostFromClusterNetwork is where a pod reaches the registry.
	HostFromClusterNetwork string `json:"hostFromClusterNetwork,omitempty"`
	Help                   string `json:"help,omitempty"`
}

// HostingConfigMap is the kube-public/local-registry-hosting ConfigMap
// (KEP-1755) for a registry pushed to at host and reached inside the
// cluster (its nodes and pods) at inCluster.
func HostingConfigMap(host, inCluster string) *corev1.ConfigMap {
	h := Hosting{Host: host, HostFromContainerRuntime: inCluster, HostFromClusterNetwork: inCluster, Help: HostingHelp}
	b, _ := yaml.Marshal(h) // a struct of strings always marshals
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: HostingName, Namespace: HostingNamespace},
		Data:       map[string]string{HostingKey: string(b)},
	}
}

// ParseHostingConfigMap reads a cluster's KEP-1755 ConfigMap: where to
// push images for that cluster.
func ParseHostingConfigMap(cm *corev1.ConfigMap) (Hosting, error) {
	if cm == nil {
		return Hosting{}, errors.New("no local-registry-hosting ConfigMap")
	}
	where := cm.Namespace + "/" + cm.Name
	v, ok := cm.Data[HostingKey]
	if !ok {
		return Hosting{}, fmt.Errorf("ConfigMap %s has no %s", where, HostingKey)
	}
	var h Hosting
	if err := yaml.Unmarshal([]byte(v), &h); err != nil {
		return Hosting{}, fmt.Errorf("reading %s of ConfigMap %s: %w", HostingKey, where, err)
	}
	if h.Host == "" {
		return Hosting{}, fmt.Errorf("ConfigMap %s: %s names no host", where, HostingKey)
	}
	return h, nil
}
