package config

import (
	"sort"
	"strings"

	kinddefaults "sigs.k8s.io/kind/pkg/apis/config/defaults"

	"github.com/devenv-tool/devenv/project"
)

// Defaults for fields a minimal devenv.yaml leaves out.
const (
	DefaultKafkaImage   = "apache/kafka:4.1.0"
	DefaultKafkaService = "kafka"
	DefaultKafkaPort    = 9092
	DefaultH2Image      = project.DefaultH2Image
	DefaultH2Service    = "h2"
	DefaultH2Port       = 9092
	DefaultDockerfile   = "Dockerfile"
)

// Kafka endpoint styles (kafka.endpoints).
const (
	EndpointsSlice   = "slice"   // an EndpointSlice only
	EndpointsClassic = "classic" // an EndpointSlice and a v1 Endpoints object
)

// H2 modes (h2.mode).
const (
	H2Memory = "memory" // each service uses its own jdbc:h2:mem database
	H2Server = "server" // an H2 container wired in like Kafka
)

// DefaultNodeImage is kind's default node image without its digest.
func DefaultNodeImage() string {
	image, _, _ := strings.Cut(kinddefaults.Image, "@")
	return image
}

// Pos is where a value was written: the file (as the user named it) and the line.
type Pos struct {
	File string
	Line int
}

// Errorf returns an *Error at this position.
func (p Pos) Errorf(field, format string, args ...any) *Error {
	return Errorf(p.File, p.Line, field, format, args...)
}

// Config is a loaded, merged and defaulted devenv.yaml.
type Config struct {
	Name      string
	Namespace string
	Files     []string // the files as given to Load, in order
	Dir       string   // absolute folder of the first file
	Templates string   // absolute folder of template overrides; "" for none
	Cluster   Cluster
	Registry  *Registry  // nil: images are loaded into the kind cluster
	Kafka     *Kafka     // nil: no Kafka
	H2        H2         // always set; Mode is H2Memory or H2Server
	Services  []*Service // enabled services, sorted by name
	Tests     []*Test    // declared tests, sorted by name
}

// Service returns the enabled service called name, or nil.
func (c *Config) Service(name string) *Service {
	i := sort.Search(len(c.Services), func(i int) bool { return c.Services[i].Name >= name })
	if i < len(c.Services) && c.Services[i].Name == name {
		return c.Services[i]
	}
	return nil
}

// Cluster is the cluster devenv deploys to: a kind cluster it creates
// (Name, Image), or, when Context is set, an existing cluster it never
// creates or deletes (Name and Image are then "").
type Cluster struct {
	Name  string // kind cluster name; kube context kind-<Name>; "" with Context
	Image string // node image; "" with Context
	// Context is a kubeconfig context of a cluster devenv did not create;
	// "" for the kind cluster.
	Context string
	// Kubeconfig is the kubeconfig file (absolute, ~ expanded); "" for
	// the default (KUBECONFIG, else ~/.kube/config).
	Kubeconfig string
	Pos        Pos // the cluster key; zero when the files have none
}

// Kafka is the broker: run by devenv as a container beside the cluster, or,
// with External, an existing broker devenv does not run (Image, Env,
// Resources and HostPort are then unset).
type Kafka struct {
	Image string
	// External is the "host:port" of a broker devenv does not run
	// (kafka.external); "" when devenv runs it. For an IP the Service
	// maps Port to the external port; for a DNS name the Service is of
	// type ExternalName and Port is the external port.
	External  string
	Service   string // name of the Service in the namespace (selector-less, or ExternalName)
	Port      int    // the Service's port: pods connect to <Service>:<Port>
	HostPort  int    // port on 127.0.0.1; 0 = chosen by devenv
	Endpoints string // EndpointsSlice or EndpointsClassic
	Topics    []Topic
	Env       map[string]string
	Resources Resources
	Pos       Pos // the kafka key
}

// Address is the in-cluster address of the broker, <service>:<port>.
func (k *Kafka) Address() string { return k.Service + ":" + itoa(k.Port) }

// Topic is a Kafka topic created at start.
type Topic struct {
	Name       string
	Partitions int // at least 1
	Config     map[string]string
	Pos        Pos
}

// H2 is the H2 database setting.
type H2 struct {
	Mode  string // H2Memory or H2Server
	Image string // server mode run by devenv; "" with External
	// External is the "host:port" of an H2 server devenv does not run
	// (h2.external, which implies server mode); "" otherwise. Service
	// and Port follow the rules of Kafka.External.
	External string
	Service  string // server mode: name of the Service (selector-less, or ExternalName)
	Port     int    // server mode: the Service's port
	Pos      Pos
}

// Resources are CPU and memory quantities, already checked by
// resource.ParseQuantity; empty means unset.
type Resources struct {
	CPU    string
	Memory string
}

// Value is a raw setting value and where it was written.
type Value struct {
	Value string
	Pos   Pos
}

// Secret says where a secret setting's value comes from.
type Secret struct {
	Env        string // environment variable, or ""
	File       string // absolute path, or ""
	Default    string
	HasDefault bool
	Field      string // e.g. services.account.secrets.datasource.password
	Pos        Pos
}

// Service is one service to build and deploy.
type Service struct {
	Name       string
	Context    string // absolute
	Dockerfile string // absolute
	Prebuild   []string
	Port       int
	Replicas   int
	Config     map[string]Value
	Secrets    map[string]Secret
	Env        map[string]string
	Args       map[string]string
	Watch      []string
	Ignore     []string
	Resources  Resources
	ProbePath  string // "" = TCP readiness check on Port
	// Ports are the service's ports forwarded to 127.0.0.1 while devenv up
	// watches, sorted by Port.
	Ports []Forward
	Pos   Pos // the service's key
}

// Forward is one entry of a service's ports: the service's port, forwarded
// from HostPort on 127.0.0.1.
type Forward struct {
	Port     int // the port the service listens on (its port:)
	HostPort int // 0 = chosen once by devenv and kept in its state folder
	Pos      Pos // the entry's key
}

// Address is the in-cluster address of the service, <name>:<port>.
func (s *Service) Address() string { return s.Name + ":" + itoa(s.Port) }

// SortedKeys returns the keys of m in order.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
