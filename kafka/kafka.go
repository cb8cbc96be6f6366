package kafka

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/project"
)

// Defaults, ports and labels.
const (
	// DefaultImage is devenv's offline broker stand-in (`devenv images build kafka`).
	DefaultImage = project.DefaultKafkaImage
	// DefaultPort is the INTERNAL listener's port.
	DefaultPort = 9092
	// HostListenerPort is the container port of the HOST listener, published on 127.0.0.1.
	HostListenerPort = 19092
	// ControllerPort is apache/kafka's KRaft controller listener (not published).
	ControllerPort = 9093
	// DefaultReadyTimeout bounds the wait for the broker to answer.
	DefaultReadyTimeout = 90 * time.Second

	LabelProject   = project.LabelProject   // the devenv project that owns the container
	LabelComponent = project.LabelComponent // Component
	LabelSpec      = project.LabelSpecHash  // hash of the wanted spec, to detect changes
	Component      = project.ComponentKafka // the value of LabelComponent

	kfakeDataDir  = "/data"
	apacheDataDir = "/var/lib/kafka/data"
)

// Kind is the kind of broker image.
type Kind string

// The broker kinds.
const (
	KindKfake  Kind = project.BrokerKfake // devenv's offline broker (internal/fakebroker)
	KindApache Kind = "apache"            // the apache/kafka image
)

// ErrImageMissing is returned (wrapped) when the broker image is not present.
var ErrImageMissing = errors.New("kafka image not present")

// Topic is a topic the broker must have.
type Topic struct {
	Name string
	// Partitions is the wanted partition count; 0 means the broker's default.
	// A higher count than the topic has is applied; a lower one is an error.
	Partitions int32
	// Config holds topic configs (retention.ms, cleanup.policy, ...).
	Config map[string]string
}

// Options holds what Ensure depends on besides the desired state (Spec).
// The zero value works: it connects to Docker for the call and logs nothing.
type Options struct {
	// Docker is the engine client; nil connects for the call with the
	// environment's settings (DOCKER_HOST, ...).
	Docker *client.Client
	// Log receives progress lines (info) and details (debug); nil is silent.
	Log *slog.Logger
}

// Spec is the broker devenv wants.
type Spec struct {
	Project       string // required; names and labels the container
	ContainerName string // default "devenv-<project>-kafka"
	Image         string // default DefaultImage
	Network       string // Docker network to join (e.g. "kind"); empty = the default bridge
	IP            string // fixed IPv4 address on Network; empty lets Docker choose
	Port          int    // INTERNAL listener port; default 9092
	HostPort      int    // port published on 127.0.0.1; 0 picks a free one
	// Env is added to the container's environment and wins over devenv's own
	// settings (for example DEVENV_KAFKA_LOG=debug or KAFKA_HEAP_OPTS).
	Env          map[string]string
	NanoCPUs     int64 // CPU limit in billionths of a core; 0 = none
	Memory       int64 // memory limit in bytes; 0 = none
	Topics       []Topic
	Labels       map[string]string // extra container labels
	ReadyTimeout time.Duration     // default DefaultReadyTimeout
}

// Endpoint is where a running broker answers.
type Endpoint struct {
	ContainerID     string
	Name            string // container name
	IP              string // address on the network
	Port            int    // INTERNAL listener port
	HostAddress     string // "127.0.0.1:<hostport>", for clients on the host
	InternalAddress string // "<ip>:<port>", for Service endpoints and containers on the network
	Image           string
	Kind            Kind
}

// withDefaults fills defaults and checks the spec.
func (s Spec) withDefaults() (Spec, error) {
	if strings.TrimSpace(s.Project) == "" {
		return s, errors.New("kafka spec: project name is empty")
	}
	if s.ContainerName == "" {
		s.ContainerName = project.ID{Name: s.Project}.ContainerName(Component)
	}
	if s.Image == "" {
		s.Image = DefaultImage
	}
	if s.Port == 0 {
		s.Port = DefaultPort
	}
	if s.Port < 1 || s.Port > 65535 {
		return s, fmt.Errorf("kafka spec: port %d is out of range 1-65535", s.Port)
	}
	if s.Port == HostListenerPort || s.Port == ControllerPort {
		return s, fmt.Errorf("kafka spec: port %d is taken by the broker's own listeners (%d host, %d controller): choose another, e.g. 9092", s.Port, HostListenerPort, ControllerPort)
	}
	if s.HostPort < 0 || s.HostPort > 65535 {
		return s, fmt.Errorf("kafka spec: host port %d is out of range 0-65535", s.HostPort)
	}
	if s.IP != "" {
		a, err := netip.ParseAddr(s.IP)
		if err != nil || !a.Is4() {
			return s, fmt.Errorf("kafka spec: IP %q is not an IPv4 address", s.IP)
		}
		if s.Network == "" {
			return s, errors.New("kafka spec: a fixed IP needs a network (Docker assigns addresses on the default bridge)")
		}
	}
	if s.NanoCPUs < 0 || s.Memory < 0 {
		return s, errors.New("kafka spec: CPU and memory limits must not be negative")
	}
	for i, t := range s.Topics {
		if strings.TrimSpace(t.Name) == "" {
			return s, fmt.Errorf("kafka spec: topic %d has no name", i+1)
		}
		if t.Partitions < 0 {
			return s, fmt.Errorf("kafka spec: topic %q: partitions %d is negative", t.Name, t.Partitions)
		}
	}
	if s.ReadyTimeout <= 0 {
		s.ReadyTimeout = DefaultReadyTimeout
	}
	return s, nil
}

// VolumeName returns the name of the project's data volume.
func VolumeName(name string) string {
	return project.ID{Name: name}.ContainerName(Component) + "-data"
}

// hash covers everything that, when changed, needs a new container. Topics
// are not in it: they are applied to a running broker.
func (s Spec) hash(imageID string, kind Kind) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name=%s\nimage=%s\nid=%s\nkind=%s\nnet=%s\nip=%s\nport=%d\nhostport=%d\ncpu=%d\nmem=%d\n",
		s.ContainerName, s.Image, imageID, kind, s.Network, s.IP, s.Port, s.HostPort, s.NanoCPUs, s.Memory)
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		fmt.Fprintf(&b, "env %s=%s\n", k, s.Env[k])
	}
	for _, k := range slices.Sorted(maps.Keys(s.Labels)) {
		fmt.Fprintf(&b, "label %s=%s\n", k, s.Labels[k])
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}

// Ensure makes sure the broker described by spec runs and answers on both
// listeners, and that spec.Topics exist. See the package documentation.
//
// It creates containers through testcontainers-go, so the program must have
// called ConfigureTestcontainers first: Ensure fails with ErrReaper when
// testcontainers-go's reaper is on, since it would remove the broker when the
// program exits.
func Ensure(ctx context.Context, spec Spec, opts Options) (Endpoint, error) {
	s, err := spec.withDefaults()
	if err != nil {
		return Endpoint{}, err
	}
	if err := checkTestcontainers(); err != nil {
		return Endpoint{}, err
	}
	lg := log.FromSlog(opts.Log)
	cli := opts.Docker
	if cli == nil {
		if cli, err = dockerx.Connect(ctx); err != nil {
			return Endpoint{}, err
		}
		defer cli.Close()
	}

	img, err := cli.ImageInspect(ctx, s.Image)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return Endpoint{}, fmt.Errorf("%w: %s; build the offline broker with `devenv images build kafka`, or `docker load` an apache/kafka image and set its name", ErrImageMissing, s.Image)
		}
		return Endpoint{}, fmt.Errorf("inspecting image %s: %w", s.Image, err)
	}
	kind := KindApache
	if img.Config != nil && project.ImageLabel(img.Config.Labels, project.LabelBroker) == string(KindKfake) {
		kind = KindKfake
	}
	want := s.hash(img.ID, kind)

	id, err := reuse(ctx, cli, s, want, lg)
	if err != nil {
		return Endpoint{}, err
	}
	if id == "" {
		if id, err = create(ctx, cli, s, kind, want, lg); err != nil {
			return Endpoint{}, err
		}
	}
	ep, err := inspect(ctx, cli, id)
	if err != nil {
		return Endpoint{}, err
	}
	if err := waitReady(ctx, cli, s, ep, lg); err != nil {
		return Endpoint{}, err
	}
	if err := EnsureTopics(ctx, ep.HostAddress, s.Topics); err != nil {
		return Endpoint{}, err
	}
	return ep, nil
}

// reuse returns the ID of a container of this project created from the wanted
// spec (started if it was stopped), or "" after removing any that differ.
func reuse(ctx context.Context, cli *client.Client, s Spec, want string, lg *log.Logger) (string, error) {
	list, err := listContainers(ctx, cli, s.Project)
	if err != nil {
		return "", err
	}
	keep := ""
	for _, c := range list {
		if keep == "" && c.Labels[LabelSpec] == want && slices.Contains(c.Names, "/"+s.ContainerName) {
			keep = c.ID
			continue
		}
		lg.Infof("kafka container %s differs from the wanted spec; recreating it (its data volume is kept)", strings.TrimPrefix(firstName(c.Names), "/"))
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("removing kafka container %s: %w", c.ID[:12], err)
		}
	}
	if keep == "" {
		// A container with our name that devenv does not own blocks the create.
		if res, err := cli.ContainerInspect(ctx, s.ContainerName, client.ContainerInspectOptions{}); err == nil {
			return "", fmt.Errorf("a container named %s exists but was not created by devenv for project %s: remove it (docker rm -f %s) or set another container name", s.ContainerName, s.Project, res.Container.ID[:12])
		}
		return "", nil
	}
	for _, c := range list {
		if c.ID == keep && c.State != container.StateRunning {
			lg.Infof("starting stopped kafka container %s", s.ContainerName)
			if _, err := cli.ContainerStart(ctx, keep, client.ContainerStartOptions{}); err != nil {
				return "", fmt.Errorf("starting kafka container %s: %w", s.ContainerName, err)
			}
		}
	}
	lg.Debugf("reusing kafka container %s", s.ContainerName)
	return keep, nil
}

func firstName(names []string) string {
	if len(names) == 0 {
		return "?"
	}
	return names[0]
}

func listContainers(ctx context.Context, cli *client.Client, name string) ([]container.Summary, error) {
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: client.Filters{}.Add("label", project.ID{Name: name}.Selector(Component)...)})
	if err != nil {
		return nil, fmt.Errorf("listing kafka containers of %s: %w", name, err)
	}
	return res.Items, nil
}

// create creates and starts a new broker container through testcontainers-go.
func create(ctx context.Context, cli *client.Client, s Spec, kind Kind, hash string, lg *log.Logger) (string, error) {
	if s.HostPort == 0 {
		p, err := freePort()
		if err != nil {
			return "", err
		}
		s.HostPort = p
	}
	req, err := containerSpec(s, kind)
	if err != nil {
		return "", err
	}
	req.Labels[LabelSpec] = hash
	lg.Debugf("kafka container: %s", req.describe())
	lg.Infof("creating kafka container %s from %s (%s broker) on %s", s.ContainerName, s.Image, kind, orDefault(s.Network, "bridge"))
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: req.generic(),
		Started:          true,
		Logger:           tcLogger{lg},
	})
	if err != nil {
		if c != nil {
			_, _ = cli.ContainerRemove(context.WithoutCancel(ctx), c.GetContainerID(), client.ContainerRemoveOptions{Force: true})
		}
		return "", fmt.Errorf("creating kafka container %s: %w", s.ContainerName, err)
	}
	return c.GetContainerID(), nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// freePort returns a TCP port free on 127.0.0.1 right now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free host port for kafka: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// inspect reads a broker container's endpoint.
func inspect(ctx context.Context, cli *client.Client, id string) (Endpoint, error) {
	res, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return Endpoint{}, fmt.Errorf("inspecting kafka container %s: %w", id, err)
	}
	c := res.Container
	ep := Endpoint{ContainerID: c.ID, Name: strings.TrimPrefix(c.Name, "/")}
	var labels map[string]string
	if c.Config != nil {
		ep.Image = c.Config.Image
		labels = c.Config.Labels
	}
	ep.Kind = Kind(labels[labelKind])
	ep.Port, _ = strconv.Atoi(labels[labelPort])
	if ep.Port == 0 {
		return Endpoint{}, fmt.Errorf("kafka container %s lacks label %s: remove it (devenv down) and run again", ep.Name, labelPort)
	}
	if c.NetworkSettings == nil {
		return Endpoint{}, fmt.Errorf("kafka container %s has no network settings (is it running?)", ep.Name)
	}
	netName := orDefault(labels[labelNetwork], "bridge")
	es := c.NetworkSettings.Networks[netName]
	if es == nil || !es.IPAddress.IsValid() {
		return Endpoint{}, fmt.Errorf("kafka container %s has no address on network %s (is it running?)", ep.Name, netName)
	}
	ep.IP = es.IPAddress.String()
	ep.InternalAddress = net.JoinHostPort(ep.IP, strconv.Itoa(ep.Port))
	for _, b := range c.NetworkSettings.Ports[hostListener] {
		if b.HostPort != "" {
			ep.HostAddress = net.JoinHostPort("127.0.0.1", b.HostPort)
			break
		}
	}
	if ep.HostAddress == "" && c.HostConfig != nil {
		// A stopped container has no live port list; read the wanted binding.
		for _, b := range c.HostConfig.PortBindings[hostListener] {
			if b.HostPort != "" && b.HostPort != "0" {
				ep.HostAddress = net.JoinHostPort("127.0.0.1", b.HostPort)
				break
			}
		}
	}
	if ep.HostAddress == "" {
		return Endpoint{}, fmt.Errorf("kafka container %s publishes no host port for %s", ep.Name, hostListener)
	}
	return ep, nil
}

// Find returns the project's broker container, if there is one. A stopped
// container is reported with found=true and an error-free endpoint only
// when its addresses can be read.
func Find(ctx context.Context, cli *client.Client, name string) (ep Endpoint, found bool, err error) {
	list, err := listContainers(ctx, cli, name)
	if err != nil || len(list) == 0 {
		return Endpoint{}, false, err
	}
	c := list[0]
	if c.State != container.StateRunning {
		return Endpoint{ContainerID: c.ID, Name: strings.TrimPrefix(firstName(c.Names), "/"), Image: c.Image,
			Kind: Kind(c.Labels[labelKind])}, true, nil
	}
	ep, err = inspect(ctx, cli, c.ID)
	return ep, true, err
}

// Remove removes the project's broker containers (found by label) and, with
// volumes, its data volume.
func Remove(ctx context.Context, cli *client.Client, name string, volumes bool) error {
	return dockerx.RemoveLabelled(ctx, cli, "kafka", volumes, project.ID{Name: name}.Selector(Component)...)
}
