package templates

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/devenv-tool/devenv/project"
)

// Labels and annotations devenv puts on what it renders.
const (
	// LabelManagedBy marks every object devenv renders, with value ManagedBy.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedBy is the value of LabelManagedBy.
	ManagedBy = "devenv"
	// LabelProject carries the project name on every object.
	LabelProject = project.LabelProject
	// LabelComponent names the external component (kafka, h2) a Service and its endpoints stand for.
	LabelComponent = project.LabelComponent
	// LabelApp selects a service's pods, as in the seed manifests.
	LabelApp = "app"
	// AnnotationConfigHash on a pod template changes when the service's
	// ConfigMap or Secret data changes, so the pods restart.
	AnnotationConfigHash = "devenv.dev/config-hash"
	// AnnotationPlaceholder marks endpoints whose address is not known yet.
	AnnotationPlaceholder = "devenv.dev/placeholder"
	// AnnotationDefaultSecrets lists the Secret keys whose value is a development default.
	AnnotationDefaultSecrets = "devenv.dev/default-secrets"
	// AnnotationMaskedSecrets says the Secret's values were masked when rendering.
	AnnotationMaskedSecrets = "devenv.dev/masked-secrets"
)

// Template names; each is the file <name>.yaml.tmpl.
const (
	Namespace       = "namespace"
	ConfigMap       = "configmap"
	Secret          = "secret"
	Service         = "service"
	ExternalService = "external-service"
	ExternalName    = "external-name"
	EndpointSlice   = "endpointslice"
	Endpoints       = "endpoints"
	Deployment      = "deployment"
)

// Kubernetes' recommended labels that devenv puts besides LabelManagedBy, so
// that kubectl, dashboards and other tools group its objects as they do any
// application's. They are never part of a selector: a Deployment's selector
// cannot change, and stays LabelApp alone.
const (
	// LabelName names the application an object belongs to: the service,
	// or the external component (kafka, h2).
	LabelName = "app.kubernetes.io/name"
	// LabelPartOf carries the project name on every object.
	LabelPartOf = "app.kubernetes.io/part-of"
	// LabelRole carries the object's role in the project: one of the
	// Role* values.
	LabelRole = "app.kubernetes.io/component"
	// RoleService is the LabelRole of a service's objects.
	RoleService = "service"
	// RoleBroker is the LabelRole of the Kafka broker's Service and endpoints.
	RoleBroker = "broker"
	// RoleDatabase is the LabelRole of the H2 server's Service and endpoints.
	RoleDatabase = "database"
)

const suffix = ".yaml.tmpl"

//go:embed *.yaml.tmpl
var builtin embed.FS

// Meta is the metadata every template receives.
type Meta struct {
	Name        string
	Namespace   string
	Labels      map[string]string
	Annotations map[string]string // may be empty
}

// NamespaceData is the data of namespace.yaml.tmpl (Meta.Namespace is empty).
type NamespaceData struct{ Meta }

// ConfigMapData is the data of configmap.yaml.tmpl.
type ConfigMapData struct {
	Meta
	Data map[string]string
}

// SecretData is the data of secret.yaml.tmpl; Data values are base64-encoded.
type SecretData struct {
	Meta
	Data map[string]string
}

// ServiceData is the data of service.yaml.tmpl: a ClusterIP Service with one port named http.
type ServiceData struct {
	Meta
	Selector map[string]string
	Port     int
}

// ExternalData is the data of external-service.yaml.tmpl, endpointslice.yaml.tmpl
// and endpoints.yaml.tmpl: a selector-less Service and the address behind it.
type ExternalData struct {
	Meta
	Service string // the Service's name (the slice's kubernetes.io/service-name)
	IP      string
	Port    int // the Service's port
	// TargetPort is the port at IP, the endpoints' port: Port for the
	// containers devenv runs, the external port for an existing broker.
	TargetPort int
}

// ExternalNameData is the data of external-name.yaml.tmpl: a Service of
// type ExternalName, a DNS alias of Host. Port is listed for
// documentation: such a Service does not remap ports.
type ExternalNameData struct {
	Meta
	Host string
	Port int
}

// EnvVar is one container environment variable: a plain Value, or a key of a
// ConfigMap or a Secret.
type EnvVar struct {
	Name      string
	Value     string
	ConfigMap string
	Secret    string
	Key       string
}

// DeploymentData is the data of deployment.yaml.tmpl.
type DeploymentData struct {
	Meta
	Selector       map[string]string
	PodLabels      map[string]string
	PodAnnotations map[string]string
	Replicas       int
	Image          string
	Port           int
	Env            []EnvVar
	ProbePath      string // "" = TCP check
	CPU, Memory    string // "" = unset
}

// Set is a parsed set of templates: the built-in ones, some possibly
// replaced by a project's own.
type Set struct {
	templates map[string]*template.Template
}

func funcs() template.FuncMap {
	return template.FuncMap{
		"quote": func(s string) string {
			b, _ := json.Marshal(s)
			return string(b)
		},
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
	}
}

// Names returns the names of the built-in templates, sorted.
func Names() []string {
	entries, _ := fs.ReadDir(builtin, ".")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), suffix))
	}
	sort.Strings(names)
	return names
}

// New parses the built-in templates, replacing each by <name>.yaml.tmpl from
// overrideDir when that file exists. overrideDir may be empty. A file there
// that matches no built-in template is an error, as it would never be used.
func New(overrideDir string) (*Set, error) {
	s := &Set{templates: map[string]*template.Template{}}
	for _, name := range Names() {
		text, err := builtin.ReadFile(name + suffix)
		if err != nil {
			return nil, fmt.Errorf("reading built-in template %s: %w", name, err)
		}
		if err := s.parse(name, name+suffix, string(text)); err != nil {
			return nil, err
		}
	}
	if overrideDir == "" {
		return s, nil
	}
	entries, err := os.ReadDir(overrideDir)
	if err != nil {
		return nil, fmt.Errorf("reading template folder: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), suffix) {
			continue
		}
		path := filepath.Join(overrideDir, e.Name())
		name := strings.TrimSuffix(e.Name(), suffix)
		if _, ok := s.templates[name]; !ok {
			return nil, fmt.Errorf("%s: no built-in template is called %q; rename it to one of %s", path, name, strings.Join(Names(), ", "))
		}
		text, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading template: %w", err)
		}
		if err := s.parse(name, path, string(text)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Set) parse(name, source, text string) error {
	t, err := template.New(source).Funcs(funcs()).Option("missingkey=error").Parse(text)
	if err != nil {
		return fmt.Errorf("parsing template %s: %w", source, err)
	}
	s.templates[name] = t
	return nil
}

// Render executes the template called name with data.
func (s *Set) Render(name string, data any) ([]byte, error) {
	t, ok := s.templates[name]
	if !ok {
		return nil, fmt.Errorf("no template called %q; known: %s", name, strings.Join(Names(), ", "))
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("rendering template %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// Render executes the built-in template called name with data.
func Render(name string, data any) ([]byte, error) {
	s, err := New("")
	if err != nil {
		return nil, err
	}
	return s.Render(name, data)
}
