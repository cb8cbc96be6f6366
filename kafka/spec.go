package kafka

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"

	"github.com/devenv-tool/devenv/project"
)

// Labels devenv reads back from its own containers.
const (
	labelKind    = project.LabelKafkaKind    // Kind
	labelPort    = project.LabelKafkaPort    // the INTERNAL listener port
	labelNetwork = project.LabelKafkaNetwork // the network whose address is the INTERNAL one
)

// hostListener is the container port of the HOST listener.
var hostListener = network.MustParsePort(strconv.Itoa(HostListenerPort) + "/tcp")

// request is everything a broker container is created from; containerSpec
// computes it without any I/O, and generic turns it into a testcontainers request.
type request struct {
	Name     string
	Image    string
	Env      map[string]string
	Labels   map[string]string
	Network  string // "" = default bridge
	IP       string // fixed address on Network, or ""
	Aliases  []string
	HostPort int    // published as 127.0.0.1:HostPort -> HostListenerPort
	Volume   string // named volume ...
	DataDir  string // ... mounted here
	NanoCPUs int64
	Memory   int64
}

// containerSpec returns the container devenv creates for s (defaults filled,
// HostPort chosen) and a broker of the given kind. The spec hash label is
// added by the caller.
func containerSpec(s Spec, kind Kind) (request, error) {
	if s.HostPort < 1 {
		return request{}, fmt.Errorf("kafka spec: no host port chosen")
	}
	r := request{
		Name:     s.ContainerName,
		Image:    s.Image,
		Network:  s.Network,
		IP:       s.IP,
		HostPort: s.HostPort,
		Volume:   VolumeName(s.Project),
		NanoCPUs: s.NanoCPUs,
		Memory:   s.Memory,
	}
	if s.Network != "" {
		r.Aliases = []string{"kafka"}
	}
	r.Labels = maps.Clone(s.Labels)
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	r.Labels[LabelProject] = s.Project
	r.Labels[LabelComponent] = Component
	r.Labels[labelKind] = string(kind)
	r.Labels[labelPort] = strconv.Itoa(s.Port)
	r.Labels[labelNetwork] = s.Network

	hostAdv := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.HostPort))
	switch kind {
	case KindKfake:
		adv := "auto" // fakebroker: the container's own address on its only network
		if s.IP != "" {
			adv = net.JoinHostPort(s.IP, strconv.Itoa(s.Port))
		}
		r.DataDir = kfakeDataDir
		r.Env = map[string]string{
			"DEVENV_KAFKA_LISTEN":              "0.0.0.0:" + strconv.Itoa(s.Port),
			"DEVENV_KAFKA_ADVERTISED":          adv,
			"DEVENV_KAFKA_EXTERNAL_LISTEN":     "0.0.0.0:" + strconv.Itoa(HostListenerPort),
			"DEVENV_KAFKA_EXTERNAL_ADVERTISED": hostAdv,
			"DEVENV_KAFKA_DATA_DIR":            kfakeDataDir,
			"DEVENV_KAFKA_CLUSTER_ID":          "devenv-" + s.Project,
		}
	case KindApache:
		// With no fixed IP the INTERNAL address is unknown before start;
		// the container name resolves on user-defined Docker networks.
		internalHost := s.ContainerName
		if s.IP != "" {
			internalHost = s.IP
		}
		r.DataDir = apacheDataDir
		r.Env = map[string]string{
			"KAFKA_NODE_ID":                                  "1",
			"KAFKA_PROCESS_ROLES":                            "broker,controller",
			"KAFKA_LISTENERS":                                fmt.Sprintf("INTERNAL://0.0.0.0:%d,HOST://0.0.0.0:%d,CONTROLLER://0.0.0.0:%d", s.Port, HostListenerPort, ControllerPort),
			"KAFKA_ADVERTISED_LISTENERS":                     fmt.Sprintf("INTERNAL://%s,HOST://%s", net.JoinHostPort(internalHost, strconv.Itoa(s.Port)), hostAdv),
			"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":           "INTERNAL:PLAINTEXT,HOST:PLAINTEXT,CONTROLLER:PLAINTEXT",
			"KAFKA_CONTROLLER_QUORUM_VOTERS":                 fmt.Sprintf("1@localhost:%d", ControllerPort),
			"KAFKA_CONTROLLER_LISTENER_NAMES":                "CONTROLLER",
			"KAFKA_INTER_BROKER_LISTENER_NAME":               "INTERNAL",
			"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":         "1",
			"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
			"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":            "1",
			"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":         "0",
			"KAFKA_LOG_DIRS":                                 apacheDataDir,
			"CLUSTER_ID":                                     clusterID(s.Project),
		}
	default:
		return request{}, fmt.Errorf("kafka spec: unknown broker kind %q", kind)
	}
	maps.Copy(r.Env, s.Env) // the user's settings win
	return r, nil
}

// clusterID is a KRaft cluster ID (16 bytes, URL-safe base64) fixed per project,
// so a recreated broker accepts the data volume of the previous one.
func clusterID(project string) string {
	sum := sha256.Sum256([]byte("devenv kafka cluster " + project))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// generic turns the request into a testcontainers-go request: no wait
// strategy (Ensure waits by the Kafka protocol), only the HOST listener
// published, restart unless stopped, the labelled data volume mounted.
func (r request) generic() testcontainers.ContainerRequest {
	req := testcontainers.ContainerRequest{
		Name:         r.Name,
		Image:        r.Image,
		Env:          r.Env,
		Labels:       r.Labels,
		ExposedPorts: []string{hostListener.String()},
	}
	if r.Network != "" {
		req.Networks = []string{r.Network}
		req.NetworkAliases = map[string][]string{r.Network: r.Aliases}
	}
	req.HostConfigModifier = func(hc *container.HostConfig) {
		hc.PortBindings = network.PortMap{hostListener: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(r.HostPort)}}}
		hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}
		hc.Resources.NanoCPUs = r.NanoCPUs
		hc.Resources.Memory = r.Memory
		if r.Network != "" {
			hc.NetworkMode = container.NetworkMode(r.Network)
		}
		hc.Mounts = append(hc.Mounts, mount.Mount{
			Type:   mount.TypeVolume,
			Source: r.Volume,
			Target: r.DataDir,
			VolumeOptions: &mount.VolumeOptions{Labels: map[string]string{
				LabelProject: r.Labels[LabelProject], LabelComponent: Component,
			}},
		})
	}
	if r.IP != "" {
		ip := netip.MustParseAddr(r.IP) // checked by Spec.withDefaults
		req.EndpointSettingsModifier = func(eps map[string]*network.EndpointSettings) {
			es := eps[r.Network]
			if es == nil {
				es = &network.EndpointSettings{Aliases: r.Aliases}
				eps[r.Network] = es
			}
			es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ip}
		}
	}
	return req
}

// describe is a one-line summary of the request for debug output; it lists
// env names only.
func (r request) describe() string {
	names := slices.Sorted(maps.Keys(r.Env))
	return fmt.Sprintf("%s image=%s net=%s ip=%s host=127.0.0.1:%d env=[%s]", r.Name, r.Image, r.Network, r.IP, r.HostPort, strings.Join(names, " "))
}
