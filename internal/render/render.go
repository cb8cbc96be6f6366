package render

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/templates"
)

// Components that run outside the cluster; the keys of Options.ExternalIPs.
const (
	ComponentKafka = "kafka"
	ComponentH2    = "h2"
)

// PlaceholderIP stands in for an external container's address that is not
// known yet. It is 192.0.2.1, from TEST-NET-1 (RFC 5737), a range kept for
// documentation that no network routes: the API server accepts it in
// Endpoints and EndpointSlices (it refuses 0.0.0.0, loopback and link-local
// addresses there), so `kubectl apply --dry-run=server` of a render passes,
// and traffic sent to it goes nowhere.
const PlaceholderIP = "192.0.2.1"

// MaskedValue replaces every Secret value when secrets are not shown: base64 of "*****".
const MaskedValue = "KioqKio="

// Options tune what Objects renders.
type Options struct {
	// ExternalIPs maps a component (ComponentKafka, ComponentH2) to its
	// container's IP on the kind network. A missing one gets PlaceholderIP
	// and the annotation templates.AnnotationPlaceholder. It is not used
	// for a component with kafka.external or h2.external, whose address
	// is in the config.
	ExternalIPs map[string]string
	// Images maps a service to its image; default devenv.local/<project>-<service>:dev.
	Images map[string]string
	// ShowSecrets puts the real values in Secrets and the config hash on
	// the pods; otherwise both are masked (the hash is ConfigHashMasked).
	ShowSecrets bool
	// HashKey keys the HMAC that the pods' config hash
	// (templates.AnnotationConfigHash) is, so that the hash reveals nothing
	// about the secret values it covers: devenv keeps a random key per user
	// in its state folder (dirs.Key(ConfigHashKeyName)). It is needed with
	// ShowSecrets and unused without.
	HashKey []byte
	// LookupEnv and ReadFile resolve secrets; default os.LookupEnv and
	// config.ReadSecretFile (regular files of up to 1 MiB).
	LookupEnv func(string) (string, bool)
	ReadFile  func(string) ([]byte, error)
	// Templates overrides the template set; default templates.New(cfg.Templates).
	Templates *templates.Set
}

// ConfigHashMasked is the config hash annotation's value when secrets are
// masked: even an HMAC of the values is not shown then.
const ConfigHashMasked = "masked"

// ConfigHashKeyName is the name of the config hash's key in devenv's state
// folder.
const ConfigHashKeyName = "config-hash.key"

// ErrNoHashKey is returned when secrets are shown without a config hash key.
var ErrNoHashKey = errors.New("rendering with the secrets shown needs the config hash key (Options.HashKey)")

// DefaultImage is the image a service gets when Options.Images names none.
func DefaultImage(project, service string) string {
	return "devenv.local/" + project + "-" + service + ":dev"
}

// EnvName turns a setting key into an environment variable name:
// spring.profile -> SPRING_PROFILE, datasource-url -> DATASOURCE_URL.
func EnvName(key string) string {
	var b strings.Builder
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := b.String()
	if name == "" || (name[0] >= '0' && name[0] <= '9') {
		name = "_" + name
	}
	return name
}

// Objects renders cfg in the order they must be applied: Namespace,
// ConfigMaps, Secrets, external Services with their EndpointSlices (and
// Endpoints; an ExternalName Service alone for a kafka.external or
// h2.external that is a DNS name), Services, Deployments. Errors about values match
// errors.Is(err, config.ErrInvalid) and name the file and line.
func Objects(cfg *config.Config, opts Options) ([]*unstructured.Unstructured, error) {
	if opts.ShowSecrets && len(opts.HashKey) == 0 {
		return nil, ErrNoHashKey
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.ReadFile == nil {
		opts.ReadFile = config.ReadSecretFile
	}
	set := opts.Templates
	if set == nil {
		var err error
		if set, err = templates.New(cfg.Templates); err != nil {
			return nil, err
		}
	}
	r := &renderer{cfg: cfg, opts: opts, set: set}
	return r.objects()
}

type renderer struct {
	cfg  *config.Config
	opts Options
	set  *templates.Set
	out  []*unstructured.Unstructured
}

func (r *renderer) labels(extra ...string) map[string]string {
	l := map[string]string{templates.LabelManagedBy: templates.ManagedBy, templates.LabelProject: r.cfg.Name, templates.LabelPartOf: r.cfg.Name}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

// serviceLabels are the labels of a service's objects besides devenv's own:
// the app label its Service and Deployment select on, and its recommended
// name and component.
func serviceLabels(service string) []string {
	return []string{templates.LabelApp, service, templates.LabelName, service, templates.LabelRole, templates.RoleService}
}

// externalRoles gives the LabelRole of each external component.
var externalRoles = map[string]string{ComponentKafka: templates.RoleBroker, ComponentH2: templates.RoleDatabase}

func (r *renderer) meta(name string, extra ...string) templates.Meta {
	return templates.Meta{Name: name, Namespace: r.cfg.Namespace, Labels: r.labels(extra...), Annotations: map[string]string{}}
}

// add renders one template and appends the object, with devenv's labels enforced.
func (r *renderer) add(name string, data any) error {
	text, err := r.set.Render(name, data)
	if err != nil {
		if name == templates.Secret {
			return secretTemplateError(err)
		}
		return err
	}
	var obj map[string]any
	if err := yaml.Unmarshal(text, &obj); err != nil {
		if name == templates.Secret {
			return secretYAMLError(err)
		}
		return fmt.Errorf("template %s produced invalid YAML: %w\n%s", name, err, text)
	}
	if obj == nil {
		return fmt.Errorf("template %s produced no object", name)
	}
	u := &unstructured.Unstructured{Object: obj}
	if u.GetKind() == "" || u.GetAPIVersion() == "" || u.GetName() == "" {
		return fmt.Errorf("template %s produced an object without apiVersion, kind or metadata.name", name)
	}
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	for k, v := range r.labels() {
		labels[k] = v
	}
	u.SetLabels(labels)
	r.out = append(r.out, u)
	return nil
}

type serviceParts struct {
	svc        *config.Service
	config     map[string]string // resolved
	secrets    map[string]string // real values
	defaults   []string          // secret keys whose value is a default
	env        []templates.EnvVar
	configHash string
}

func (r *renderer) objects() ([]*unstructured.Unstructured, error) {
	cfg := r.cfg
	var parts []*serviceParts
	var errs []error
	for _, s := range cfg.Services {
		p, err := r.resolve(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		parts = append(parts, p)
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}

	if err := r.add(templates.Namespace, templates.NamespaceData{Meta: templates.Meta{Name: cfg.Namespace, Labels: r.labels()}}); err != nil {
		return nil, err
	}
	for _, p := range parts {
		if len(p.config) == 0 {
			continue
		}
		if err := r.add(templates.ConfigMap, templates.ConfigMapData{Meta: r.meta(p.svc.Name, serviceLabels(p.svc.Name)...), Data: p.config}); err != nil {
			return nil, err
		}
	}
	for _, p := range parts {
		if len(p.secrets) == 0 {
			continue
		}
		m := r.meta(p.svc.Name, serviceLabels(p.svc.Name)...)
		data := map[string]string{}
		for k, v := range p.secrets {
			data[k] = base64.StdEncoding.EncodeToString([]byte(v))
			if !r.opts.ShowSecrets {
				data[k] = MaskedValue
			}
		}
		if len(p.defaults) > 0 {
			m.Annotations[templates.AnnotationDefaultSecrets] = strings.Join(p.defaults, ",")
		}
		if !r.opts.ShowSecrets {
			m.Annotations[templates.AnnotationMaskedSecrets] = "values masked; render with --show-secrets to see them"
		}
		if err := r.add(templates.Secret, templates.SecretData{Meta: m, Data: data}); err != nil {
			return nil, err
		}
	}
	if k := cfg.Kafka; k != nil {
		if err := r.external(ComponentKafka, k.Service, k.Port, k.External, k.Endpoints == config.EndpointsClassic); err != nil {
			return nil, err
		}
	}
	if cfg.H2.Mode == config.H2Server {
		if err := r.external(ComponentH2, cfg.H2.Service, cfg.H2.Port, cfg.H2.External, false); err != nil {
			return nil, err
		}
	}
	for _, p := range parts {
		data := templates.ServiceData{Meta: r.meta(p.svc.Name, serviceLabels(p.svc.Name)...),
			Selector: map[string]string{templates.LabelApp: p.svc.Name}, Port: p.svc.Port}
		if err := r.add(templates.Service, data); err != nil {
			return nil, err
		}
	}
	for _, p := range parts {
		s := p.svc
		image := r.opts.Images[s.Name]
		if image == "" {
			image = DefaultImage(cfg.Name, s.Name)
		}
		data := templates.DeploymentData{
			Meta:           r.meta(s.Name, serviceLabels(s.Name)...),
			Selector:       map[string]string{templates.LabelApp: s.Name},
			PodLabels:      r.labels(serviceLabels(s.Name)...),
			PodAnnotations: map[string]string{templates.AnnotationConfigHash: p.configHash},
			Replicas:       s.Replicas,
			Image:          image,
			Port:           s.Port,
			Env:            p.env,
			ProbePath:      s.ProbePath,
			CPU:            s.Resources.CPU,
			Memory:         s.Resources.Memory,
		}
		if err := r.add(templates.Deployment, data); err != nil {
			return nil, err
		}
	}
	return r.out, nil
}

// external renders the selector-less Service of a container outside the
// cluster, its EndpointSlice and, when classic is set, its Endpoints. ext
// is the "host:port" of a broker or server devenv does not run, "" for
// devenv's own container: an IP is rendered as devenv's container is, with
// the Service's port mapped to the external port; a DNS name as a Service
// of type ExternalName, without endpoints.
func (r *renderer) external(component, service string, port int, ext string, classic bool) error {
	labels := []string{templates.LabelComponent, component, templates.LabelName, component, templates.LabelRole, externalRoles[component]}
	ip, targetPort := r.opts.ExternalIPs[component], port
	if ext != "" {
		host, p, err := net.SplitHostPort(ext)
		if err != nil {
			return fmt.Errorf("the external address of %s %q is not HOST:PORT", component, ext)
		}
		if targetPort, err = strconv.Atoi(p); err != nil {
			return fmt.Errorf("the external address of %s %q has no numeric port", component, ext)
		}
		if _, err := netip.ParseAddr(host); err != nil {
			return r.add(templates.ExternalName, templates.ExternalNameData{Meta: r.meta(service, labels...), Host: host, Port: port})
		}
		ip = host
	}
	placeholder := ip == ""
	if placeholder {
		ip = PlaceholderIP
	} else if a, err := netip.ParseAddr(ip); err != nil || !a.Is4() {
		return fmt.Errorf("the address of %s %q is not an IPv4 address", component, ip)
	}
	data := templates.ExternalData{Meta: r.meta(service, labels...), Service: service, IP: ip, Port: port, TargetPort: targetPort}
	if err := r.add(templates.ExternalService, data); err != nil {
		return err
	}
	ep := data
	ep.Meta = r.meta(service, append(labels,
		"kubernetes.io/service-name", service,
		"endpointslice.kubernetes.io/managed-by", "devenv.dev")...)
	if placeholder {
		ep.Meta.Annotations[templates.AnnotationPlaceholder] = "true"
	}
	if err := r.add(templates.EndpointSlice, ep); err != nil {
		return err
	}
	if !classic {
		return nil
	}
	ep.Meta = r.meta(service, append(labels, "endpointslice.kubernetes.io/skip-mirror", "true")...)
	if placeholder {
		ep.Meta.Annotations[templates.AnnotationPlaceholder] = "true"
	}
	return r.add(templates.Endpoints, ep)
}

// resolve expands a service's config values, resolves its secrets and builds
// its container environment.
func (r *renderer) resolve(s *config.Service) (*serviceParts, error) {
	p := &serviceParts{svc: s, config: map[string]string{}, secrets: map[string]string{}}
	var errs []error
	base := "services." + s.Name
	for _, k := range config.SortedKeys(s.Config) {
		v, err := expand(r.cfg, s.Config[k], base+".config."+k)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.config[k] = v
	}
	for _, k := range config.SortedKeys(s.Secrets) {
		v, def, err := s.Secrets[k].Resolve(r.opts.LookupEnv, r.opts.ReadFile)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.secrets[k] = v
		if def {
			p.defaults = append(p.defaults, k)
		}
	}

	// Environment: plain env, then ConfigMap keys, then Secret keys; two
	// settings that map to the same variable name are an error.
	owner := map[string]string{}
	claim := func(name, by string, pos config.Pos, field string) bool {
		if msgs := validation.IsEnvVarName(name); len(msgs) > 0 {
			errs = append(errs, pos.Errorf(field, "becomes environment variable %q, which is not valid: %s", name, strings.Join(msgs, "; ")))
			return false
		}
		if prev, taken := owner[name]; taken {
			errs = append(errs, pos.Errorf(field, "becomes environment variable %s, which %s already sets; rename one of them", name, prev))
			return false
		}
		owner[name] = by
		return true
	}
	for _, k := range config.SortedKeys(s.Env) {
		v, err := expand(r.cfg, config.Value{Value: s.Env[k], Pos: s.Pos}, base+".env."+k)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if claim(k, base+".env."+k, s.Pos, base+".env."+k) {
			p.env = append(p.env, templates.EnvVar{Name: k, Value: v})
		}
	}
	for _, k := range config.SortedKeys(s.Config) {
		field := base + ".config." + k
		if claim(EnvName(k), field, s.Config[k].Pos, field) {
			p.env = append(p.env, templates.EnvVar{Name: EnvName(k), ConfigMap: s.Name, Key: k})
		}
	}
	for _, k := range config.SortedKeys(s.Secrets) {
		field := base + ".secrets." + k
		if claim(EnvName(k), field, s.Secrets[k].Pos, field) {
			p.env = append(p.env, templates.EnvVar{Name: EnvName(k), Secret: s.Name, Key: k})
		}
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	p.configHash = ConfigHashMasked
	if r.opts.ShowSecrets {
		p.configHash = hashData(r.opts.HashKey, p.config, p.secrets)
	}
	return p, nil
}

// hashData is a short digest of a service's ConfigMap and Secret data. It
// mixes in the real secret values, so a changed password restarts the pods.
// It is an HMAC-SHA256 keyed by a random key of the user's (a plain hash of
// a short password is found by guessing); 16 hex digits are kept.
func hashData(key []byte, cm, secret map[string]string) string {
	h := hmac.New(sha256.New, key)
	for _, part := range []struct {
		tag string
		m   map[string]string
	}{{"configmap", cm}, {"secret", secret}} {
		keys := make([]string, 0, len(part.m))
		for k := range part.m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(h, "%s\x00%s\x00%s\x00", part.tag, k, part.m[k])
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// YAML writes objects as one multi-document YAML stream.
func YAML(objs []*unstructured.Unstructured) ([]byte, error) {
	var buf bytes.Buffer
	for i, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("writing %s %s as YAML: %w", o.GetKind(), o.GetName(), err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

func itoa(i int) string { return strconv.Itoa(i) }
