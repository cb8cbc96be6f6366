package h2

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/project"
)

// Defaults and labels.
const (
	// DefaultImage is devenv's H2 stand-in (built by `devenv images build h2`).
	DefaultImage = project.DefaultH2Image
	// DefaultPort is H2's TCP server port (the same number as Kafka's; they
	// live in different containers with different addresses).
	DefaultPort = 9092
	// DefaultReadyTimeout bounds the wait for a new server (it is usually ready in 1.5 s).
	DefaultReadyTimeout = 60 * time.Second
	// ServiceName is the in-cluster name pods use for the database.
	ServiceName = "h2"

	LabelProject   = project.LabelProject   // the devenv project that owns the container
	LabelComponent = project.LabelComponent // Component
	LabelSpec      = project.LabelSpecHash  // hash of the wanted spec, to detect changes
	Component      = project.ComponentH2    // the value of LabelComponent

	// readyLine is what H2's Server prints once the TCP server listens.
	readyLine = "TCP server running"
	dataDir   = "/data"
	h2Jar     = "/usr/share/java/h2.jar"
)

// Options holds what Ensure depends on besides the desired state (Spec).
// The zero value works: it connects to Docker for the call and logs nothing.
type Options struct {
	// Docker is the engine client; nil connects for the call with the
	// environment's settings (DOCKER_HOST, ...).
	Docker *client.Client
	// Log receives progress lines (info) and details (debug); nil is silent.
	Log *slog.Logger
}

// Spec is the H2 server devenv wants.
type Spec struct {
	Project       string            // required; names and labels the container
	ContainerName string            // default "devenv-<project>-h2"
	Image         string            // default DefaultImage
	Network       string            // Docker network to join (the kind network); empty for the default bridge
	IP            string            // fixed address on Network; empty lets Docker choose
	Port          int               // server port inside the container; default 9092
	HostPort      int               // port published on 127.0.0.1; 0 picks a free one
	CPU           float64           // CPU limit in cores; 0 means none
	Memory        int64             // memory limit in bytes; 0 means none
	Labels        map[string]string // extra container labels
	ReadyTimeout  time.Duration     // default DefaultReadyTimeout
}

// Endpoint is where the running server answers.
type Endpoint struct {
	ContainerID     string
	IP              string // address on Spec.Network
	Port            int    // server port on IP
	HostAddress     string // 127.0.0.1:<published port>, for the host
	InternalAddress string // IP:Port, for Service endpoints and other containers
}

// ErrImageMissing is returned (wrapped) when the H2 image is not present.
var ErrImageMissing = errors.New("H2 image not present")

// JDBCURL returns the URL for a server-mode in-memory database, for example
// jdbc:h2:tcp://h2:9092/mem:account;DB_CLOSE_DELAY=-1. DB_CLOSE_DELAY=-1
// keeps the database while no connection is open.
func JDBCURL(serviceHost string, port int, db string) string {
	return fmt.Sprintf("jdbc:h2:tcp://%s/mem:%s;DB_CLOSE_DELAY=-1", net.JoinHostPort(serviceHost, strconv.Itoa(port)), db)
}

// MemURL returns the URL of an in-process in-memory database, for example
// jdbc:h2:mem:account;DB_CLOSE_DELAY=-1.
func MemURL(db string) string {
	return fmt.Sprintf("jdbc:h2:mem:%s;DB_CLOSE_DELAY=-1", db)
}

// withDefaults fills the defaults and checks the spec.
func (s Spec) withDefaults() (Spec, error) {
	if strings.TrimSpace(s.Project) == "" {
		return s, errors.New("h2 spec: project name is empty")
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
		return s, fmt.Errorf("h2 spec: port %d is out of range 1-65535", s.Port)
	}
	if s.HostPort < 0 || s.HostPort > 65535 {
		return s, fmt.Errorf("h2 spec: host port %d is out of range 0-65535", s.HostPort)
	}
	if s.IP != "" {
		if _, err := netip.ParseAddr(s.IP); err != nil {
			return s, fmt.Errorf("h2 spec: IP %q is not an IP address", s.IP)
		}
		if s.Network == "" {
			return s, errors.New("h2 spec: a fixed IP needs a network (Docker assigns addresses on the default bridge)")
		}
	}
	if s.CPU < 0 || s.Memory < 0 {
		return s, errors.New("h2 spec: CPU and memory limits must not be negative")
	}
	if s.ReadyTimeout == 0 {
		s.ReadyTimeout = DefaultReadyTimeout
	}
	return s, nil
}

// labels returns the container's labels: the caller's plus ownership.
func (s Spec) labels(hash string) map[string]string {
	l := maps.Clone(s.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l[LabelProject] = s.Project
	l[LabelComponent] = Component
	l[LabelSpec] = hash
	return l
}

// hash covers everything that, when changed, needs a new container.
func (s Spec) hash(imageID string) string {
	keys := slices.Sorted(maps.Keys(s.Labels))
	var b strings.Builder
	fmt.Fprintf(&b, "image=%s\nid=%s\nnet=%s\nip=%s\nport=%d\nhostport=%d\ncpu=%g\nmem=%d\n", s.Image, imageID, s.Network, s.IP, s.Port, s.HostPort, s.CPU, s.Memory)
	for _, k := range keys {
		fmt.Fprintf(&b, "label %s=%s\n", k, s.Labels[k])
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}

// command returns the server command line for the spec's port.
func (s Spec) command() []string {
	return []string{"java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", h2Jar, "org.h2.tools.Server",
		"-tcp", "-tcpAllowOthers", "-tcpPort", strconv.Itoa(s.Port), "-ifNotExists", "-baseDir", dataDir}
}

// VolumeName returns the name of the container's data volume.
func (s Spec) VolumeName() string {
	name := s.ContainerName
	if name == "" {
		name = project.ID{Name: s.Project}.ContainerName(Component)
	}
	return name + "-data"
}

// Ensure makes sure the H2 server described by spec runs and answers: it
// reuses a container created from the same spec (starting it if stopped),
// replaces one created from a different spec, and waits until the server
// reports "TCP server running" and its published port accepts connections.
func Ensure(ctx context.Context, spec Spec, opts Options) (Endpoint, error) {
	sp, err := spec.withDefaults()
	if err != nil {
		return Endpoint{}, err
	}
	s := server{Spec: sp, docker: opts.Docker, log: log.FromSlog(opts.Log)}
	if s.docker == nil {
		if s.docker, err = dockerx.Connect(ctx); err != nil {
			return Endpoint{}, err
		}
		defer s.docker.Close()
	}
	img, err := s.docker.ImageInspect(ctx, s.Image)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return Endpoint{}, fmt.Errorf("%w: %s; build it with `devenv images build h2`", ErrImageMissing, s.Image)
		}
		return Endpoint{}, fmt.Errorf("inspecting %s: %w", s.Image, err)
	}
	want := s.hash(img.ID)

	id := ""
	existing, err := s.docker.ContainerInspect(ctx, s.ContainerName, client.ContainerInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
	case err != nil:
		return Endpoint{}, fmt.Errorf("inspecting container %s: %w", s.ContainerName, err)
	default:
		c := existing.Container
		if c.Config != nil && c.Config.Labels[LabelSpec] == want && c.Config.Labels[LabelProject] == s.Project {
			id = c.ID
			s.log.Debugf("reusing H2 container %s", s.ContainerName)
		} else {
			s.log.Infof("H2 container %s differs from the wanted spec; recreating it", s.ContainerName)
			if _, err := s.docker.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
				return Endpoint{}, fmt.Errorf("removing container %s: %w", s.ContainerName, err)
			}
		}
	}
	if id == "" {
		id, err = create(ctx, s, want)
		if err != nil {
			return Endpoint{}, err
		}
	}
	if _, err := s.docker.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return Endpoint{}, fmt.Errorf("starting container %s: %w", s.ContainerName, err)
	}
	ep, err := endpoint(ctx, s, id)
	if err != nil {
		return Endpoint{}, err
	}
	if err := waitReady(ctx, s, ep); err != nil {
		return Endpoint{}, err
	}
	return ep, nil
}

// server is a Spec with defaults filled and the dependencies of one Ensure call.
type server struct {
	Spec
	docker *client.Client
	log    *log.Logger
}

func create(ctx context.Context, s server, hash string) (string, error) {
	port, err := network.ParsePort(strconv.Itoa(s.Port) + "/tcp")
	if err != nil {
		return "", fmt.Errorf("h2 spec: port %d: %w", s.Port, err)
	}
	hostPort := ""
	if s.HostPort != 0 {
		hostPort = strconv.Itoa(s.HostPort)
	}
	labels := s.labels(hash)
	cfg := &container.Config{
		Image:        s.Image,
		Labels:       labels,
		ExposedPorts: network.PortSet{port: {}},
	}
	if s.Port != DefaultPort {
		cfg.Entrypoint = s.command()
	}
	hc := &container.HostConfig{
		PortBindings:  network.PortMap{port: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: hostPort}}},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		Mounts: []mount.Mount{{
			Type:          mount.TypeVolume,
			Source:        s.VolumeName(),
			Target:        dataDir,
			VolumeOptions: &mount.VolumeOptions{Labels: map[string]string{LabelProject: s.Project, LabelComponent: Component}},
		}},
		Resources: container.Resources{NanoCPUs: int64(s.CPU * 1e9), Memory: s.Memory},
	}
	var nc *network.NetworkingConfig
	if s.Network != "" {
		hc.NetworkMode = container.NetworkMode(s.Network)
		es := &network.EndpointSettings{Aliases: []string{ServiceName}}
		if s.IP != "" {
			es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr(s.IP)}
		}
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{s.Network: es}}
	}
	s.log.Debugf("creating H2 container %s from %s", s.ContainerName, s.Image)
	res, err := s.docker.ContainerCreate(ctx, client.ContainerCreateOptions{Name: s.ContainerName, Config: cfg, HostConfig: hc, NetworkingConfig: nc})
	if err != nil {
		return "", fmt.Errorf("creating container %s: %w", s.ContainerName, err)
	}
	return res.ID, nil
}

// endpoint reads the container's addresses.
func endpoint(ctx context.Context, s server, id string) (Endpoint, error) {
	res, err := s.docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return Endpoint{}, fmt.Errorf("inspecting container %s: %w", s.ContainerName, err)
	}
	c := res.Container
	ep := Endpoint{ContainerID: c.ID, Port: s.Port}
	if c.NetworkSettings == nil {
		return Endpoint{}, fmt.Errorf("container %s has no network settings", s.ContainerName)
	}
	netName := s.Network
	if netName == "" {
		netName = "bridge"
	}
	if es := c.NetworkSettings.Networks[netName]; es != nil && es.IPAddress.IsValid() {
		ep.IP = es.IPAddress.String()
		ep.InternalAddress = net.JoinHostPort(ep.IP, strconv.Itoa(s.Port))
	} else {
		return Endpoint{}, fmt.Errorf("container %s has no address on network %s", s.ContainerName, netName)
	}
	port, _ := network.ParsePort(strconv.Itoa(s.Port) + "/tcp")
	for _, b := range c.NetworkSettings.Ports[port] {
		if b.HostPort != "" {
			ep.HostAddress = net.JoinHostPort("127.0.0.1", b.HostPort)
			break
		}
	}
	if ep.HostAddress == "" {
		return Endpoint{}, fmt.Errorf("container %s publishes no host port for %d", s.ContainerName, s.Port)
	}
	return ep, nil
}

// waitReady polls until the log says the TCP server runs and the host port accepts a connection.
func waitReady(ctx context.Context, s server, ep Endpoint) error {
	s.log.Debugf("waiting up to %s for H2 at %s", s.ReadyTimeout, ep.HostAddress)
	wctx, cancel := context.WithTimeout(ctx, s.ReadyTimeout)
	defer cancel()
	var last error
	for {
		last = checkReady(wctx, s, ep)
		if last == nil {
			return nil
		}
		var exited *exitedError
		if errors.As(last, &exited) {
			return last
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("H2 in container %s not ready after %s: %w", s.ContainerName, s.ReadyTimeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

type exitedError struct {
	name string
	code int
	logs string
}

func (e *exitedError) Error() string {
	return fmt.Sprintf("H2 container %s exited with code %d; its output:\n%s", e.name, e.code, e.logs)
}

func checkReady(ctx context.Context, s server, ep Endpoint) error {
	res, err := s.docker.ContainerInspect(ctx, ep.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("inspecting container: %w", err)
	}
	logs, err := containerLogs(ctx, s.docker, ep.ContainerID)
	if err != nil {
		return err
	}
	if st := res.Container.State; st != nil && !st.Running && st.Status != container.StateCreated {
		return &exitedError{name: s.ContainerName, code: st.ExitCode, logs: tail(logs, 30)}
	}
	if !strings.Contains(logs, readyLine) {
		return fmt.Errorf("no %q in its log yet", readyLine)
	}
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", ep.HostAddress)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", ep.HostAddress, err)
	}
	_ = conn.Close()
	return nil
}

func containerLogs(ctx context.Context, cli *client.Client, id string) (string, error) {
	rc, err := cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return "", fmt.Errorf("reading container logs: %w", err)
	}
	defer rc.Close()
	var b strings.Builder
	if _, err := stdcopy.StdCopy(&b, &b, io.LimitReader(rc, 1<<20)); err != nil {
		return "", fmt.Errorf("reading container logs: %w", err)
	}
	return b.String(), nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Remove removes the project's H2 container (and, with volumes, its data volume).
func Remove(ctx context.Context, cli *client.Client, name string, volumes bool) error {
	return dockerx.RemoveLabelled(ctx, cli, "H2", volumes, project.ID{Name: name}.Selector(Component)...)
}

// Find returns the project's H2 container, if there is one, as the container
// list reports it: the address on the kind network (else on any network),
// the server port and the published host address. A stopped container is
// reported with found=true and the addresses it still has (often none).
func Find(ctx context.Context, cli *client.Client, name string) (ep Endpoint, found bool, err error) {
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: client.Filters{}.Add("label", project.ID{Name: name}.Selector(Component)...)})
	if err != nil {
		return Endpoint{}, false, fmt.Errorf("listing H2 containers of %s: %w", name, err)
	}
	if len(res.Items) == 0 {
		return Endpoint{}, false, nil
	}
	c := res.Items[0]
	ep = Endpoint{ContainerID: c.ID}
	if ns := c.NetworkSettings; ns != nil {
		if es := ns.Networks[project.NetworkName]; es != nil && es.IPAddress.IsValid() {
			ep.IP = es.IPAddress.String()
		} else {
			for _, n := range slices.Sorted(maps.Keys(ns.Networks)) {
				if es := ns.Networks[n]; es != nil && es.IPAddress.IsValid() {
					ep.IP = es.IPAddress.String()
					break
				}
			}
		}
	}
	for _, p := range c.Ports {
		if p.PrivatePort != 0 {
			ep.Port = int(p.PrivatePort)
		}
		if p.PublicPort != 0 {
			ep.HostAddress = net.JoinHostPort("127.0.0.1", strconv.Itoa(int(p.PublicPort)))
		}
	}
	if ep.IP != "" && ep.Port != 0 {
		ep.InternalAddress = net.JoinHostPort(ep.IP, strconv.Itoa(ep.Port))
	}
	return ep, true, nil
}
