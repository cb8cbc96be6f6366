package project

import (
	"crypto/sha256"
	"encoding/hex"
)

// Label keys devenv puts on the containers, volumes, networks, Kubernetes
// objects and images it owns.
const (
	// LabelProject carries the project (ID.Key: the name on devenv's own
	// cluster) on everything devenv owns.
	LabelProject = "devenv.dev/project"
	// LabelComponent names the part a container or object belongs to
	// (ComponentKafka, ComponentH2).
	LabelComponent = "devenv.dev/component"
	// LabelService names the service a built image belongs to.
	LabelService = "devenv.dev/service"
	// LabelSpecHash is the hash of the spec a container was created from,
	// so a changed spec is noticed and the container recreated.
	LabelSpecHash = "devenv.dev/spec-hash"
	// LabelOwned marks the kind Docker network when devenv created it.
	LabelOwned = "devenv.dev/owned"
	// LabelProbe marks the short-lived container that probes --privileged.
	LabelProbe = "devenv.dev/probe"
	// LabelPurpose marks short-lived helper containers (value: what for).
	LabelPurpose = "devenv.dev/purpose"

	// LabelStandIn is a stand-in image's short name ("kind-node", "kafka", ...).
	LabelStandIn = "devenv.dev/standin"
	// LabelStandInFor is the real repository a stand-in replaces ("kindest/node").
	LabelStandInFor = "devenv.dev/standin-for"
	// LabelRecipe is the hash of everything a stand-in image was built from.
	LabelRecipe = "devenv.dev/recipe"
	// LabelBroker says how the kafka package configures a broker image:
	// BrokerKfake for devenv's offline broker; apache/kafka has no such label.
	LabelBroker = "devenv.dev/kafka-broker"

	// LabelKafkaKind is the broker kind of a Kafka container (kafka.Kind).
	LabelKafkaKind = "devenv.dev/kafka-kind"
	// LabelKafkaPort is a Kafka container's INTERNAL listener port.
	LabelKafkaPort = "devenv.dev/kafka-port"
	// LabelKafkaNetwork is the Docker network whose address is a Kafka
	// container's INTERNAL one ("" means bridge).
	LabelKafkaNetwork = "devenv.dev/kafka-network"
)

// Values of the labels above.
const (
	ComponentKafka = "kafka" // LabelComponent of the Kafka broker
	ComponentH2    = "h2"    // LabelComponent of the H2 server
	BrokerKfake    = "kfake" // LabelBroker of devenv's offline broker image
)

// legacyLabels maps the image label keys devenv wrote before it used one
// namespace (dev.devenv.*) to today's. Images built then still carry them.
var legacyLabels = map[string]string{
	LabelStandIn:    "dev.devenv.standin",
	LabelStandInFor: "dev.devenv.standin-for",
	LabelRecipe:     "dev.devenv.recipe",
	LabelBroker:     "dev.devenv.kafka-broker",
	LabelProject:    "dev.devenv.project",
	LabelService:    "dev.devenv.service",
}

// LegacyLabel returns the dev.devenv.* key that images built by older devenv
// versions carry instead of key, or "" when key never had another spelling.
func LegacyLabel(key string) string { return legacyLabels[key] }

// ImageLabel reads an image label under its current key, else under its
// legacy dev.devenv.* key, so images built before the rename (the stand-ins
// take many minutes to build) are still recognised.
func ImageLabel(labels map[string]string, key string) string {
	if v, ok := labels[key]; ok {
		return v
	}
	if old := legacyLabels[key]; old != "" {
		return labels[old]
	}
	return ""
}

// NetworkName is the Docker network kind puts its nodes on; devenv's
// external containers (Kafka, H2) join it.
const NetworkName = "kind"

// Default images.
const (
	// Registry is the registry part of every image devenv builds itself.
	Registry = "devenv.local"
	// DefaultKafkaImage is devenv's offline broker stand-in.
	DefaultKafkaImage = Registry + "/kafka:kfake"
	// DefaultH2Image is devenv's H2 server stand-in.
	DefaultH2Image = Registry + "/h2:2.1.214"
)

// ID is a project's identity: what container names, labels, selectors, the
// lock and devenv's records are keyed on.
//
// On the kind cluster devenv creates for a project (Context empty) the
// project name alone identifies it, as it always has. On a cluster devenv did
// not create, several developers or CI jobs may run the same project in
// different namespaces, so the identity is name + cluster context +
// namespace: Key adds a short hash of the context and namespace to the name.
type ID struct {
	Name string // the project name (devenv.yaml's name)
	// Context is the kubeconfig context of a cluster devenv did not create
	// (devenv.yaml's cluster.context); "" for devenv's own kind cluster.
	Context string
	// Namespace is the project's namespace; part of the identity only
	// together with Context.
	Namespace string
}

// Key is the identity as one string usable in container names, labels and
// file names: the name, or name-HASH on a cluster devenv did not create
// (HASH: 8 hex digits of SHA-256 over context and namespace).
func (id ID) Key() string {
	if id.Context == "" {
		return id.Name
	}
	sum := sha256.Sum256([]byte(id.Context + "\x00" + id.Namespace))
	return id.Name + "-" + hex.EncodeToString(sum[:4])
}

// String is Key.
func (id ID) String() string { return id.Key() }

func (id ID) ContainerName(component string) string {
	return "devenv-" + id.Key() + "-" + component
}

// Labels returns the ownership labels of the project's things: LabelProject,
// and LabelComponent when component is not "".
func (id ID) Labels(component string) map[string]string {
	l := map[string]string{LabelProject: id.Key()}
	if component != "" {
		l[LabelComponent] = component
	}
	return l
}

// Selector returns Labels(component) as Docker filter terms ("key=value"),
// in a fixed order: project first.
func (id ID) Selector(component string) []string {
	s := []string{LabelProject + "=" + id.Key()}
	if component != "" {
		s = append(s, LabelComponent+"="+component)
	}
	return s
}
