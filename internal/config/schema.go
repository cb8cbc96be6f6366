package config

import (
	"encoding/json"
	"sort"
)

// schemaNode is the subset of JSON Schema (draft 2020-12) devenv.yaml needs.
// The decoder takes its list of valid field names from the same tree, so the
// schema and the decoder cannot drift apart.
type schemaNode struct {
	Schema               string                 `json:"$schema,omitempty"`
	ID                   string                 `json:"$id,omitempty"`
	Title                string                 `json:"title,omitempty"`
	Description          string                 `json:"description,omitempty"`
	Type                 any                    `json:"type,omitempty"`
	Enum                 []string               `json:"enum,omitempty"`
	Default              any                    `json:"default,omitempty"`
	Minimum              *int                   `json:"minimum,omitempty"`
	Maximum              *int                   `json:"maximum,omitempty"`
	MinItems             *int                   `json:"minItems,omitempty"`
	Properties           map[string]*schemaNode `json:"properties,omitempty"`
	Required             []string               `json:"required,omitempty"`
	AdditionalProperties any                    `json:"additionalProperties,omitempty"`
	PropertyNames        *schemaNode            `json:"propertyNames,omitempty"`
	Pattern              string                 `json:"pattern,omitempty"`
	Items                *schemaNode            `json:"items,omitempty"`
	OneOf                []*schemaNode          `json:"oneOf,omitempty"`
}

// fieldNames returns the property names of an object schema, sorted.
func (s *schemaNode) fieldNames() []string {
	names := make([]string, 0, len(s.Properties))
	for k := range s.Properties {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func intPtr(i int) *int { return &i }

func object(desc string, props map[string]*schemaNode, required ...string) *schemaNode {
	return &schemaNode{Type: "object", Description: desc, Properties: props, Required: required, AdditionalProperties: false}
}

func str(desc string) *schemaNode { return &schemaNode{Type: "string", Description: desc} }

func boolean(desc string) *schemaNode { return &schemaNode{Type: "boolean", Description: desc} }

func integer(desc string, lo, hi int) *schemaNode {
	return &schemaNode{Type: "integer", Description: desc, Minimum: intPtr(lo), Maximum: intPtr(hi)}
}

func enum(desc string, values ...string) *schemaNode {
	return &schemaNode{Type: "string", Description: desc, Enum: values, Default: values[0]}
}

func strList(desc string) *schemaNode {
	return &schemaNode{Type: "array", Description: desc, Items: &schemaNode{Type: "string"}}
}

// scalarMap is a map of names to scalar values (kept as strings).
func scalarMap(desc string) *schemaNode {
	return &schemaNode{Type: "object", Description: desc,
		AdditionalProperties: &schemaNode{Type: []string{"string", "number", "boolean"}}}
}

func port(desc string) *schemaNode { return integer(desc, 1, 65535) }

func resourcesSchema(desc string) *schemaNode {
	return object(desc, map[string]*schemaNode{
		"cpu":    str("CPU as a Kubernetes quantity, e.g. 500m or \"1\"."),
		"memory": str("Memory as a Kubernetes quantity, e.g. 256Mi or 1Gi."),
	})
}

func topicSchema() *schemaNode {
	long := object("A topic with settings.", map[string]*schemaNode{
		"name":       str("Topic name."),
		"partitions": integer("Number of partitions (default 1).", 1, 10000),
		"config":     scalarMap("Topic configuration, e.g. retention.ms: \"60000\"."),
	}, "name")
	return &schemaNode{Description: "A topic: its name, or an object with name, partitions and config.",
		OneOf: []*schemaNode{str("Topic name (1 partition)."), long}}
}

func secretSchema() *schemaNode {
	return object("Where a secret value comes from: env or file (one of them is required), and an optional development default.", map[string]*schemaNode{
		"env":     str("Environment variable holding the value."),
		"file":    str("File holding the value, relative to the config file that sets it."),
		"default": str("Value used when the variable or file is absent. Marked as development-only in the rendered Secret."),
	})
}

func serviceSchema() *schemaNode {
	return object("One service: built from a Dockerfile, deployed as a Deployment and a ClusterIP Service.", map[string]*schemaNode{
		"enabled":    boolean("Set to false (usually in an override file) to leave the service out."),
		"context":    str("Docker build context folder, relative to the config file that sets it. Default: ./<service name>."),
		"dockerfile": str("Dockerfile, relative to the context. Default: Dockerfile. Must exist."),
		"prebuild":   strList("Command (argv) run in the context before docker build, e.g. [\"./build.sh\"]."),
		"port":       port("Port the service listens on; the Service exposes it as port \"http\"."),
		"replicas":   integer("Number of pods (default 1).", 0, 100),
		"config":     scalarMap("Settings put in the service's ConfigMap and passed as environment variables (key spring.profile becomes SPRING_PROFILE). Values may use ${kafka.address}, ${namespace}, ${services.<name>.address}, ${h2.url.<name>}."),
		"secrets":    {Type: "object", Description: "Settings put in the service's Secret and passed as environment variables.", AdditionalProperties: secretSchema()},
		"env":        scalarMap("Plain environment variables on the container."),
		"args":       scalarMap("Docker build arguments."),
		"watch":      strList("Glob patterns (relative to the context) whose changes trigger a rebuild. Default: everything."),
		"ignore":     strList("Glob patterns (relative to the context) to ignore when watching, e.g. target/**."),
		"resources":  resourcesSchema("CPU and memory requests (memory is also the limit)."),
		"ports": {Type: "object", Description: "Ports forwarded to 127.0.0.1 while devenv up watches: the service's port -> a host port, e.g. {8080: 18080}. Host port 0 lets devenv choose one once and keep it.",
			PropertyNames: &schemaNode{Type: "string", Pattern: "^[1-9][0-9]{0,4}$"}, AdditionalProperties: integer("Host port on 127.0.0.1; 0 = chosen by devenv and kept.", 0, 65535)},
		"probe": object("Readiness probe. Default: a TCP check on the port.", map[string]*schemaNode{
			"path": str("HTTP path for an HTTP GET readiness check, e.g. /health."),
		}),
	}, "port")
}

// rootSchema is the schema of a whole devenv.yaml.
func rootSchema() *schemaNode {
	root := object("devenv.yaml: a local microservice environment (kind cluster, Kafka, H2, services).", map[string]*schemaNode{
		"name":      str("Project name. Default: the name of the folder holding the first config file."),
		"namespace": str("Kubernetes namespace for everything. Default: the project name. May use ${user} (your user name as a DNS label; DEVENV_USER overrides it) and ${env.NAME}, e.g. cosmos-${user}."),
		"templates": str("Folder with your own versions of devenv's manifest templates (<name>.yaml.tmpl), relative to the config file."),
		"cluster": object("The cluster: a kind cluster devenv creates (name, image), or an existing cluster it never creates or deletes (context).", map[string]*schemaNode{
			"name":       str("kind cluster name (kube context kind-<name>). Default: the project name. Not with context."),
			"image":      str("kind node image. Default: kind's default node image. Not with context."),
			"context":    str("A kubeconfig context of an existing cluster that devenv did not create; devenv deploys there and never creates or deletes it. Not with name or image."),
			"kubeconfig": str("The kubeconfig file, relative to the config file that sets it (~ is your home folder). Default: KUBECONFIG, else ~/.kube/config."),
		}),
		"registry": {Description: "The image registry the services' images are pushed to, for a cluster that pulls them from there: HOST[:PORT][/PREFIX], or an object with address and insecure.",
			OneOf: []*schemaNode{
				{Type: "string", Description: "HOST[:PORT][/PREFIX], e.g. localhost:5001 or registry.example.com/team/dev; local: a registry container devenv runs beside the kind cluster it creates (the default there); none: images are loaded into the kind node."},
				object("A registry with settings.", map[string]*schemaNode{
					"address":  str("HOST[:PORT][/PREFIX], e.g. registry.example.com/team/dev."),
					"insecure": boolean("Allow plain HTTP to a registry that is not on this machine (localhost and loopback addresses always may)."),
				}, "address"),
			}},
		"kafka": object("A Kafka broker run as a container beside the cluster, or an existing one (external). Absent means no Kafka.", map[string]*schemaNode{
			"enabled":   boolean("Set to false to switch Kafka off."),
			"external":  str("HOST:PORT of an existing broker devenv does not run, e.g. 10.0.0.5:9092 or kafka.example.com:9092: an IP gets a selector-less Service and endpoints, a DNS name an ExternalName Service (then port is the external port). Not with image, env, resources or hostPort."),
			"image":     str("Broker image. Default: apache/kafka:4.1.0."),
			"service":   str("Name of the selector-less Service (and its endpoints) in the namespace. Default: kafka."),
			"port":      port("Broker port inside the cluster network. Default: 9092."),
			"hostPort":  integer("Port published on 127.0.0.1 for host clients; 0 lets devenv choose once and keep it.", 0, 65535),
			"endpoints": enum("How the Service is wired: slice (an EndpointSlice) or classic (also a v1 Endpoints object).", "slice", "classic"),
			"topics":    {Type: "array", Description: "Topics created at start.", Items: topicSchema()},
			"env":       scalarMap("Extra environment variables on the broker container."),
			"resources": resourcesSchema("CPU and memory for the broker container."),
		}),
		"h2": object("The H2 database.", map[string]*schemaNode{
			"mode":     enum("memory: each service uses jdbc:h2:mem; server: an H2 container wired in like Kafka.", "memory", "server"),
			"external": str("HOST:PORT of an existing H2 server devenv does not run (implies mode server), wired in as kafka.external is. Not with image."),
			"image":    str("H2 server image (server mode). Default: devenv.local/h2:2.1.214."),
			"service":  str("Name of the selector-less Service for the H2 server. Default: h2."),
			"port":     port("H2 TCP port. Default: 9092."),
		}),
		"services": {Type: "object", Description: "The services, by name (a DNS label).", AdditionalProperties: serviceSchema()},
		"tests":    testsSchemaNode(),
	})
	root.Schema = "https://json-schema.org/draft/2020-12/schema"
	root.ID = "https://devenv.dev/schema/devenv.yaml.json"
	root.Title = "devenv.yaml"
	return root
}

// Schema returns the JSON Schema (draft 2020-12) of devenv.yaml, indented.
func Schema() []byte {
	b, err := json.MarshalIndent(rootSchema(), "", "  ")
	if err != nil {
		panic("config: schema does not marshal: " + err.Error()) // a programming error, caught by the tests
	}
	return append(b, '\n')
}
