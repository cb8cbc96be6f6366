package project

// Label keys devenv puts on the containers, volumes, networks, Kubernetes
// objects and images it owns.
const (
	// LabelProject carries the project name (ID.Name) on everything devenv owns.
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

// ID is a project's identity: what container names, labels, selectors and
// the lock are keyed on. Today it is the project name alone; it is a struct
// so it can grow (cluster context, namespace) without changing its users.
type ID struct {
	Name string // the project name (devenv.yaml's name)
}

// String returns the name.
func (id ID) String() string { return id.Name }

// ContainerName returns the name of the project's container for a
// component: devenv-<name>-<component>, e.g. devenv-cosmos-kafka.
func (id ID) ContainerName(component string) string {
	return "devenv-" + id.Name + "-" + component
}

// Labels returns the ownership labels of the project's things: LabelProject,
// and LabelComponent when component is not "".
func (id ID) Labels(component string) map[string]string {
	l := map[string]string{LabelProject: id.Name}
	if component != "" {
		l[LabelComponent] = component
	}
	return l
}

// Selector returns Labels(component) as Docker filter terms ("key=value"),
// in a fixed order: project first.
func (id ID) Selector(component string) []string {
	s := []string{LabelProject + "=" + id.Name}
	if component != "" {
		s = append(s, LabelComponent+"="+component)
	}
	return s
}
