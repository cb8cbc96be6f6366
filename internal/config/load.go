package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// maxErrors bounds how many problems one Load reports.
const maxErrors = 20

// Load reads, merges, defaults and checks the config files. Later files
// override earlier ones: mappings merge key by key, lists and plain values are
// replaced whole, and a relative path is relative to the file that sets it.
// A service (or kafka) with enabled: false is dropped after merging.
//
// Every error about the files' content matches errors.Is(err, ErrInvalid);
// several are reported at once, joined with errors.Join.
func Load(files ...string) (*Config, error) {
	if len(files) == 0 {
		files = []string{"devenv.yaml"}
	}
	d := &decoder{file: map[*yaml.Node]string{}, dir: map[string]string{}, at: map[string]Pos{}, files: files}
	var merged *yaml.Node
	for _, f := range files {
		root, err := d.parse(f)
		if err != nil {
			return nil, err
		}
		if merged == nil {
			merged = root
		} else {
			merged = d.merge(merged, root)
		}
	}
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	cfg := d.config(merged, files)
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	return cfg, nil
}

// decoder walks yaml nodes, remembering which file each node came from.
type decoder struct {
	file map[*yaml.Node]string // node -> file as the user named it
	dir  map[string]string     // file -> its absolute folder
	errs []error
	// files are the files as given to Load, in order.
	files []string

	merged        map[[2]*yaml.Node]*yaml.Node // (dst, src) -> their merge
	mergeEntries  int                          // mapping entries the merges wrote
	mergeTooLarge bool                         // reported once

	// names are the Service names devenv renders, as they are claimed:
	// name -> the field and place that set it.
	names map[string]namePlace
	// at is where some single-valued fields (kafka.service, h2.service)
	// were written, as merged.
	at map[string]Pos
}

type namePlace struct {
	field string
	pos   Pos
}

func (d *decoder) errorf(n *yaml.Node, field, format string, args ...any) {
	if len(d.errs) == maxErrors {
		d.errs = append(d.errs, &Error{File: d.file[n], Field: field, Msg: "too many errors; fix the ones above first"})
	}
	if len(d.errs) > maxErrors {
		return
	}
	d.errs = append(d.errs, Errorf(d.file[n], n.Line, field, format, args...))
}

func (d *decoder) pos(n *yaml.Node) Pos { return Pos{File: d.file[n], Line: n.Line} }

// parse reads one file, registers its nodes and reports duplicate keys.
func (d *decoder) parse(file string) (*yaml.Node, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &Error{File: file, Msg: "file not found; create it (devenv schema prints what it may hold) or name another with -f"}
		}
		return nil, &Error{File: file, Msg: fmt.Sprintf("cannot read: %v", err)}
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("finding the folder of %s: %w", file, err)
	}
	d.dir[file] = filepath.Dir(abs)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, syntaxError(file, err)
	}
	// A later document would be silently ignored: refuse it, unless it is
	// empty (a trailing "---").
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, syntaxError(file, err)
		}
		if len(next.Content) > 0 && !isNull(next.Content[0]) {
			return nil, Errorf(file, next.Line, "", "a second YAML document starts here (---); devenv reads one document per file: put overrides in a file of their own and add it with -f")
		}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &Error{File: file, Msg: "the file is empty; it needs at least a services: section"}
	}
	root := doc.Content[0]
	d.register(root, file, "")
	if root.Kind != yaml.MappingNode {
		return nil, Errorf(file, root.Line, "", "expected a mapping of settings (name:, services:, ...), got %s", describe(root))
	}
	return root, nil
}

// register records the file of every node below n and reports duplicate keys.
func (d *decoder) register(n *yaml.Node, file, path string) {
	if n == nil {
		return
	}
	if _, seen := d.file[n]; seen {
		return // an anchor reached again through an alias
	}
	d.file[n] = file
	switch n.Kind {
	case yaml.MappingNode:
		first := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			d.file[k] = file
			field := join(path, k.Value)
			if line, dup := first[k.Value]; dup {
				d.errorf(k, field, "duplicate key (first set on line %d); keep one", line)
			} else {
				first[k.Value] = k.Line
			}
			d.register(n.Content[i+1], file, field)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			d.register(c, file, fmt.Sprintf("%s[%d]", path, i))
		}
	case yaml.AliasNode:
		d.register(n.Alias, file, path)
	}
}

// maxMergeEntries bounds the mapping entries one merge may write. A real
// devenv.yaml has a few hundred; the bound only stops a file whose aliases
// make it huge as a tree.
const maxMergeEntries = 100_000

// merge returns dst overridden by src: mappings merge key by key (keeping the
// key node of the first file, so defaults stay relative to it), anything else
// is replaced. A null src keeps dst.
//
// Like the single-file decoding, which visits a node reached again through
// an alias only once, the merge does each pair of nodes once and shares the
// result: a file of nested aliases stays a small graph instead of growing
// into its exponential tree. Within that, it writes at most maxMergeEntries.
func (d *decoder) merge(dst, src *yaml.Node) *yaml.Node {
	dst, src = deref(dst), deref(src)
	if isNull(src) {
		return dst
	}
	if dst.Kind != yaml.MappingNode || src.Kind != yaml.MappingNode {
		return src
	}
	pair := [2]*yaml.Node{dst, src}
	if out, done := d.merged[pair]; done {
		return out
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: dst.Tag, Line: dst.Line, Column: dst.Column}
	d.file[out] = d.file[dst]
	if d.merged == nil {
		d.merged = map[[2]*yaml.Node]*yaml.Node{}
	}
	d.merged[pair] = out
	d.mergeEntries += len(dst.Content)/2 + len(src.Content)/2
	if d.mergeEntries > maxMergeEntries {
		if !d.mergeTooLarge {
			d.mergeTooLarge = true
			d.errorf(src, "", "merging this file into the ones before it gives more than %d settings; are aliases (*name) nesting other aliases?", maxMergeEntries)
		}
		return out
	}
	out.Content = append(out.Content, dst.Content...)
	index := make(map[string]int, len(out.Content)/2)
	for j := 0; j+1 < len(out.Content); j += 2 {
		if _, seen := index[out.Content[j].Value]; !seen {
			index[out.Content[j].Value] = j
		}
	}
	for i := 0; i+1 < len(src.Content); i += 2 {
		k, v := src.Content[i], src.Content[i+1]
		if j, found := index[k.Value]; found {
			out.Content[j+1] = d.merge(out.Content[j+1], v)
			continue
		}
		index[k.Value] = len(out.Content)
		out.Content = append(out.Content, k, v)
	}
	return out
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func itoa(i int) string { return strconv.Itoa(i) }

// object walks a mapping whose valid keys are the properties of s, reporting
// unknown keys with the closest valid one. A null node is an empty mapping.
func (d *decoder) object(n *yaml.Node, path string, s *schemaNode, fn func(key string, k, v *yaml.Node)) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping with fields %s; got %s", strings.Join(s.fieldNames(), ", "), describe(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		if _, ok := s.Properties[k.Value]; !ok {
			if c := closest(k.Value, s.fieldNames()); c != "" {
				d.errorf(k, join(path, k.Value), "unknown field; did you mean %q?", c)
			} else {
				d.errorf(k, join(path, k.Value), "unknown field; valid fields are %s", strings.Join(s.fieldNames(), ", "))
			}
			continue
		}
		fn(k.Value, k, v)
	}
}

// entries walks a mapping of user-chosen keys.
func (d *decoder) entries(n *yaml.Node, path, what string, fn func(k, v *yaml.Node)) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping of %s; got %s", what, describe(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		fn(n.Content[i], deref(n.Content[i+1]))
	}
}

// str reads any scalar as a string ("" for null).
func (d *decoder) str(n *yaml.Node, path string) string {
	if isNull(n) {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected a string; got %s", describe(n))
		return ""
	}
	return n.Value
}

func (d *decoder) integer(n *yaml.Node, path string, lo, hi int, what string) int {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		d.errorf(n, path, "expected %s (a whole number from %d to %d); got %s", what, lo, hi, describe(n))
		return 0
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil || v < lo || v > hi {
		d.errorf(n, path, "%s %s is out of range; expected %d-%d", what, n.Value, lo, hi)
		return 0
	}
	return v
}

func (d *decoder) port(n *yaml.Node, path string) int { return d.integer(n, path, 1, 65535, "port") }

func (d *decoder) boolean(n *yaml.Node, path string) bool {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		d.errorf(n, path, "expected true or false; got %s", describe(n))
		return false
	}
	return n.Value == "true" || n.Value == "True" || n.Value == "TRUE"
}

func (d *decoder) strList(n *yaml.Node, path, example string) []string {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a list, e.g. %s; got %s", example, describe(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		c = deref(c)
		if c.Kind != yaml.ScalarNode || isNull(c) {
			d.errorf(c, fmt.Sprintf("%s[%d]", path, i), "expected a string; got %s", describe(c))
			continue
		}
		out = append(out, c.Value)
	}
	return out
}

// values reads a mapping of names to plain values.
func (d *decoder) values(n *yaml.Node, path string) map[string]Value {
	out := map[string]Value{}
	d.entries(n, path, "names to values", func(k, v *yaml.Node) {
		field := join(path, k.Value)
		if v.Kind != yaml.ScalarNode {
			d.errorf(k, field, "expected a plain value (string, number or boolean); got %s. Nested settings are not supported: write the key with dots, e.g. spring.profile", describe(v))
			return
		}
		if k.Value == "" {
			d.errorf(k, field, "empty key")
			return
		}
		val := v.Value
		if isNull(v) {
			val = ""
		}
		out[k.Value] = Value{Value: val, Pos: d.pos(v)}
	})
	return out
}

func (d *decoder) strMap(n *yaml.Node, path string) map[string]string {
	out := map[string]string{}
	for k, v := range d.values(n, path) {
		out[k] = v.Value
	}
	return out
}

// filePath resolves a path value relative to the folder of the file that set it.
func (d *decoder) filePath(n *yaml.Node, path string) string {
	p := d.str(n, path)
	if p == "" {
		return ""
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(d.dir[d.file[n]], p)
	}
	return filepath.Clean(p)
}

func (d *decoder) resources(n *yaml.Node, path string, s *schemaNode) Resources {
	var r Resources
	d.object(n, path, s, func(key string, k, v *yaml.Node) {
		field := join(path, key)
		q := d.str(v, field)
		if _, err := resource.ParseQuantity(q); err != nil {
			d.errorf(v, field, "%q is not a Kubernetes quantity; expected e.g. 500m or \"1\" for cpu, 256Mi or 1Gi for memory", q)
			return
		}
		switch key {
		case "cpu":
			r.CPU = q
		case "memory":
			r.Memory = q
		}
	})
	return r
}

func (d *decoder) dnsLabel(n *yaml.Node, path, value, what string) {
	if msgs := validation.IsDNS1123Label(value); len(msgs) > 0 {
		d.errorf(n, path, "%q is not a valid %s: %s", value, what, strings.Join(msgs, "; "))
	}
}

func (d *decoder) serviceName(n *yaml.Node, path, value string) {
	if msgs := validation.IsDNS1035Label(value); len(msgs) > 0 {
		d.errorf(n, path, "%q is not a valid service name: %s", value, strings.Join(msgs, "; "))
	}
}

var topicNameRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// config decodes the merged root into a Config with defaults applied.
func (d *decoder) config(root *yaml.Node, files []string) *Config {
	rs := rootSchema()
	cfg := &Config{Files: files, Dir: d.dir[files[0]]}
	var nameNode, nsNode *yaml.Node
	var kafkaKey, kafkaVal, h2Key, h2Val, servicesVal, testsVal *yaml.Node
	d.object(root, "", rs, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			cfg.Name, nameNode = d.str(v, key), v
		case "namespace":
			cfg.Namespace, nsNode = d.str(v, key), v
		case "templates":
			cfg.Templates = d.filePath(v, key)
			if cfg.Templates != "" {
				if st, err := os.Stat(cfg.Templates); err != nil || !st.IsDir() {
					d.errorf(v, key, "folder %s does not exist; create it or remove templates:", cfg.Templates)
				}
			}
		case "cluster":
			cfg.Cluster.Pos = d.pos(k)
			d.cluster(&cfg.Cluster, v, rs.Properties[key])
		case "registry":
			cfg.Registry = d.registry(k, v, rs.Properties[key])
		case "kafka":
			kafkaKey, kafkaVal = k, v
		case "h2":
			h2Key, h2Val = k, v
		case "services":
			servicesVal = v
		case "tests":
			testsVal = v
		}
	})

	if cfg.Name == "" {
		cfg.Name = filepath.Base(cfg.Dir)
		if msgs := validation.IsDNS1123Label(cfg.Name); len(msgs) > 0 {
			d.errs = append(d.errs, Errorf(files[0], 1, "name", "not set, and the folder name %q is not a valid project name (%s); add name: <lowercase-name>", cfg.Name, strings.Join(msgs, "; ")))
		}
	} else {
		d.dnsLabel(nameNode, "name", cfg.Name, "project name")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = cfg.Name
	} else if ns, err := d.namespace(Value{Value: cfg.Namespace, Pos: d.pos(nsNode)}); err != nil {
		d.errs = append(d.errs, err)
	} else if ns != cfg.Namespace {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			d.errorf(nsNode, "namespace", "%q expands to %q, which is not a valid namespace: %s", cfg.Namespace, ns, strings.Join(msgs, "; "))
		}
		cfg.Namespace = ns
	} else {
		d.dnsLabel(nsNode, "namespace", cfg.Namespace, "namespace")
	}
	if cfg.Registry != nil && cfg.Registry.Local && cfg.Cluster.Context != "" {
		d.errs = append(d.errs, cfg.Registry.Pos.Errorf("registry", "local is a registry devenv runs beside the kind cluster it creates; with cluster.context give the address of a registry that cluster pulls from (HOST[:PORT][/PREFIX])"))
	}
	if cfg.Cluster.Context == "" {
		if cfg.Cluster.Name == "" {
			cfg.Cluster.Name = cfg.Name
		}
		if cfg.Cluster.Image == "" {
			cfg.Cluster.Image = DefaultNodeImage()
		}
	}

	if kafkaKey != nil {
		cfg.Kafka = d.kafka(kafkaKey, kafkaVal, rs.Properties["kafka"])
	}
	cfg.H2 = H2{Mode: H2Memory, Image: DefaultH2Image, Service: DefaultH2Service, Port: DefaultH2Port}
	if h2Key != nil {
		cfg.H2.Pos = d.pos(h2Key)
		nodes := map[string]*yaml.Node{} // field -> its value
		d.object(h2Val, "h2", rs.Properties["h2"], func(key string, _, v *yaml.Node) {
			field := "h2." + key
			nodes[field] = v
			switch key {
			case "mode":
				cfg.H2.Mode = d.str(v, field)
				if cfg.H2.Mode != H2Memory && cfg.H2.Mode != H2Server {
					d.errorf(v, field, "unknown mode %q; expected memory or server", cfg.H2.Mode)
				}
			case "image":
				cfg.H2.Image = d.str(v, field)
			case "service":
				cfg.H2.Service = d.str(v, field)
				d.serviceName(v, field, cfg.H2.Service)
				d.at[field] = d.pos(v)
			case "port":
				cfg.H2.Port = d.port(v, field)
			}
		})
		if ext := nodes["h2.external"]; ext != nil && !isNull(ext) {
			h := &cfg.H2
			if m := nodes["h2.mode"]; m != nil && h.Mode == H2Memory && !d.before(m, ext) {
				ep := d.pos(ext)
				d.errorf(m, "h2.mode", "h2.external (%s:%d) is an H2 server that devenv does not run, and mode memory would give each service an in-memory database instead; remove mode: (external means server)", ep.File, ep.Line)
			}
			container := []setting{{"h2.image", nodes["h2.image"]}}
			if d.external("h2", ext, &h.External, container) {
				d.externalPort("h2", ext, nodes["h2.port"], h.External, &h.Port)
			}
			h.Mode, h.Image = H2Server, ""
		}
	}

	services := map[string]*Service{}
	named := map[string]bool{} // every name under services:, enabled or not
	ss := rs.Properties["services"].AdditionalProperties.(*schemaNode)
	d.entries(servicesVal, "services", "service names to services", func(k, v *yaml.Node) {
		named[k.Value] = true
		if s := d.service(k, v, ss); s != nil {
			services[s.Name] = s
		}
	})
	for _, name := range SortedKeys(services) {
		cfg.Services = append(cfg.Services, services[name])
	}
	cfg.Tests = d.tests(testsVal, rs.Properties["tests"].AdditionalProperties.(*schemaNode), named, SortedKeys(services))
	// Every Service devenv renders needs its own name.
	if cfg.Kafka != nil {
		d.claimName(cfg.Kafka.Service, "kafka.service", cfg.Kafka.Pos, "set kafka.service")
	}
	if cfg.H2.Mode == H2Server {
		d.claimName(cfg.H2.Service, "h2.service", cfg.H2.Pos, "set h2.service")
	}
	for _, s := range cfg.Services {
		d.claimName(s.Name, "services."+s.Name, s.Pos, "rename the service")
	}
	d.hostPorts(cfg)
	return cfg
}

// hostPorts refuses a host port (other than 0) that two services' ports, or
// a service's ports and kafka.hostPort, both ask for.
func (d *decoder) hostPorts(cfg *Config) {
	type owner struct {
		field string
		pos   Pos
	}
	taken := map[int]owner{}
	if k := cfg.Kafka; k != nil && k.HostPort != 0 {
		taken[k.HostPort] = owner{"kafka.hostPort", d.at["kafka.hostPort"]}
	}
	for _, s := range cfg.Services {
		for _, f := range s.Ports {
			if f.HostPort == 0 {
				continue
			}
			field := fmt.Sprintf("services.%s.ports.%d", s.Name, f.Port)
			if o, dup := taken[f.HostPort]; dup {
				d.errs = append(d.errs, f.Pos.Errorf(field, "host port %d is already used by %s (%s:%d); choose another, or 0 to let devenv pick one", f.HostPort, o.field, o.pos.File, o.pos.Line))
				continue
			}
			taken[f.HostPort] = owner{field, f.Pos}
		}
	}
}

// claimName records that field names a Service; a name claimed before is an
// error naming both places. pos is where the field is set (for a default,
// the section that implies it), unless d.at knows the value's own place.
func (d *decoder) claimName(name, field string, pos Pos, fix string) {
	if p, ok := d.at[field]; ok {
		pos = p
	}
	if d.names == nil {
		d.names = map[string]namePlace{}
	}
	first, taken := d.names[name]
	if !taken {
		d.names[name] = namePlace{field: field, pos: pos}
		return
	}
	d.errs = append(d.errs, pos.Errorf(field, "the Service name %q is also set by %s (%s:%d); every Service devenv renders needs its own name: %s, or set %s", name, first.field, first.pos.File, first.pos.Line, fix, first.field))
}

func (d *decoder) kafka(key, n *yaml.Node, s *schemaNode) *Kafka {
	k := &Kafka{Image: DefaultKafkaImage, Service: DefaultKafkaService, Port: DefaultKafkaPort,
		Endpoints: EndpointsSlice, Env: map[string]string{}, Pos: d.pos(key)}
	enabled := true
	nodes := map[string]*yaml.Node{} // field -> its value
	d.object(n, "kafka", s, func(name string, _, v *yaml.Node) {
		field := "kafka." + name
		nodes[field] = v
		switch name {
		case "enabled":
			enabled = d.boolean(v, field)
		case "image":
			k.Image = d.str(v, field)
		case "service":
			k.Service = d.str(v, field)
			d.serviceName(v, field, k.Service)
			d.at[field] = d.pos(v)
		case "port":
			k.Port = d.port(v, field)
		case "hostPort":
			k.HostPort = d.integer(v, field, 0, 65535, "port")
			d.at[field] = d.pos(v)
		case "endpoints":
			k.Endpoints = d.str(v, field)
			if k.Endpoints != EndpointsSlice && k.Endpoints != EndpointsClassic {
				d.errorf(v, field, "unknown value %q; expected slice (an EndpointSlice) or classic (also a v1 Endpoints object)", k.Endpoints)
			}
		case "topics":
			k.Topics = d.topics(v, field, s.Properties["topics"].Items.OneOf[1])
		case "env":
			k.Env = d.strMap(v, field)
		case "resources":
			k.Resources = d.resources(v, field, s.Properties[name])
		}
	})
	if !enabled {
		return nil
	}
	if ext := nodes["kafka.external"]; ext != nil && !isNull(ext) {
		container := []setting{{"kafka.image", nodes["kafka.image"]}, {"kafka.env", nodes["kafka.env"]},
			{"kafka.resources", nodes["kafka.resources"]}, {"kafka.hostPort", nodes["kafka.hostPort"]}}
		if host, _, err := parseExternal(ext.Value); err == nil && !isIP(host) {
			// A DNS name: an ExternalName Service, which has no endpoints.
			container = append(container, setting{"kafka.endpoints", nodes["kafka.endpoints"]})
		}
		if d.external("kafka", ext, &k.External, container) {
			d.externalPort("kafka", ext, nodes["kafka.port"], k.External, &k.Port)
		}
		k.Image, k.Env, k.Resources, k.HostPort = "", map[string]string{}, Resources{}, 0
		delete(d.at, "kafka.hostPort")
		if _, ip := k.ExternalIP(); !ip {
			k.Endpoints = EndpointsSlice
		}
	}
	return k
}

func (d *decoder) topics(n *yaml.Node, path string, long *schemaNode) []Topic {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a list of topics, e.g. [transfers] or [{name: transfers, partitions: 3}]; got %s", describe(n))
		return nil
	}
	var out []Topic
	seen := map[string]int{}
	for i, c := range n.Content {
		c = deref(c)
		field := fmt.Sprintf("%s[%d]", path, i)
		t := Topic{Partitions: 1, Config: map[string]string{}, Pos: d.pos(c)}
		switch c.Kind {
		case yaml.ScalarNode:
			t.Name = d.str(c, field)
		case yaml.MappingNode:
			d.object(c, field, long, func(key string, _, v *yaml.Node) {
				switch key {
				case "name":
					t.Name = d.str(v, field+".name")
				case "partitions":
					t.Partitions = d.integer(v, field+".partitions", 1, 10000, "partition count")
				case "config":
					t.Config = d.strMap(v, field+".config")
				}
			})
		default:
			d.errorf(c, field, "expected a topic name or {name: ..., partitions: ...}; got %s", describe(c))
			continue
		}
		if !topicNameRE.MatchString(t.Name) {
			d.errorf(c, field, "topic name %q is not valid; use 1-249 letters, digits, '.', '_' or '-'", t.Name)
			continue
		}
		if line, dup := seen[t.Name]; dup {
			d.errorf(c, field, "topic %q is already listed on line %d", t.Name, line)
			continue
		}
		seen[t.Name] = c.Line
		out = append(out, t)
	}
	return out
}

// service decodes one service; nil when it is disabled or unusable.
func (d *decoder) service(key, n *yaml.Node, s *schemaNode) *Service {
	name := key.Value
	path := "services." + name
	svc := &Service{Name: name, Replicas: 1, Config: map[string]Value{}, Secrets: map[string]Secret{},
		Env: map[string]string{}, Args: map[string]string{}, Pos: d.pos(key)}
	// enabled first: a disabled service is dropped without further checks,
	// so an override file can switch off a service whose folder is missing.
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "enabled" && !d.boolean(deref(n.Content[i+1]), path+".enabled") {
				return nil
			}
		}
	}
	d.serviceName(key, path, name)
	var contextNode, dockerfileNode, portsNode *yaml.Node
	portSet := false
	d.object(n, path, s, func(k string, _, v *yaml.Node) {
		field := path + "." + k
		switch k {
		case "context":
			svc.Context, contextNode = d.filePath(v, field), v
		case "dockerfile":
			svc.Dockerfile, dockerfileNode = d.str(v, field), v
		case "prebuild":
			svc.Prebuild = d.strList(v, field, `["./build.sh"]`)
		case "port":
			svc.Port, portSet = d.port(v, field), true
		case "replicas":
			svc.Replicas = d.integer(v, field, 0, 100, "replica count")
		case "config":
			svc.Config = d.values(v, field)
		case "secrets":
			if v.Kind == yaml.ScalarNode && !isNull(v) {
				// Not echoed: it may be a secret's value.
				d.errorf(v, field, "expected a mapping of setting names to {env: VAR} or {file: ./path}; got a plain value (a secret's value is never written in devenv.yaml)")
				return
			}
			d.entries(v, field, "setting names to {env: ...} or {file: ...}", func(sk, sv *yaml.Node) {
				if sec, ok := d.secret(sk, sv, field+"."+sk.Value, s.Properties["secrets"].AdditionalProperties.(*schemaNode)); ok {
					svc.Secrets[sk.Value] = sec
				}
			})
		case "env":
			svc.Env = d.strMap(v, field)
			for name := range svc.Env {
				if msgs := validation.IsEnvVarName(name); len(msgs) > 0 {
					d.errorf(v, field+"."+name, "not a valid environment variable name: %s", strings.Join(msgs, "; "))
				}
			}
		case "args":
			svc.Args = d.strMap(v, field)
		case "watch":
			svc.Watch = d.strList(v, field, `["src/**"]`)
			d.patterns(v, field)
		case "ignore":
			svc.Ignore = d.strList(v, field, `["target/**"]`)
			d.patterns(v, field)
		case "resources":
			svc.Resources = d.resources(v, field, s.Properties[k])
		case "ports":
			portsNode = v
			svc.Ports = d.ports(v, field)
		case "probe":
			d.object(v, field, s.Properties[k], func(_ string, _, pv *yaml.Node) {
				svc.ProbePath = d.str(pv, field+".path")
				if !strings.HasPrefix(svc.ProbePath, "/") {
					d.errorf(pv, field+".path", "expected an absolute HTTP path such as /health; got %q", svc.ProbePath)
				}
			})
		case "enabled":
		}
	})
	if !portSet {
		d.errorf(key, path+".port", "missing; every service needs the port it listens on, e.g. port: 8080")
	} else if portsNode != nil {
		for _, f := range svc.Ports {
			if f.Port != svc.Port {
				d.errs = append(d.errs, f.Pos.Errorf(fmt.Sprintf("%s.ports.%d", path, f.Port), "%d is not a port of the service, which listens on %d (its port:); write ports: {%d: %d}", f.Port, svc.Port, svc.Port, f.HostPort))
			}
		}
	}
	for k, sec := range svc.Secrets {
		if _, dup := svc.Config[k]; dup {
			d.errs = append(d.errs, sec.Pos.Errorf(sec.Field, "also set under config; a setting is either config or a secret"))
		}
	}
	// Kubernetes refuses ConfigMap and Secret keys outside [-._a-zA-Z0-9]:
	// say so now rather than when the objects are applied.
	for _, k := range SortedKeys(svc.Config) {
		if msgs := validation.IsConfigMapKey(k); len(msgs) > 0 {
			d.errs = append(d.errs, svc.Config[k].Pos.Errorf(path+".config."+k, "%q is not a valid ConfigMap key: %s", k, strings.Join(msgs, "; ")))
		}
	}
	for _, k := range SortedKeys(svc.Secrets) {
		if msgs := validation.IsConfigMapKey(k); len(msgs) > 0 {
			sec := svc.Secrets[k]
			d.errs = append(d.errs, sec.Pos.Errorf(sec.Field, "%q is not a valid Secret key: %s", k, strings.Join(msgs, "; ")))
		}
	}

	// The context defaults to ./<name> next to the file that first defined the service.
	ctxPos := key
	if contextNode != nil {
		ctxPos = contextNode
	}
	if svc.Context == "" {
		svc.Context = filepath.Join(d.dir[d.file[key]], name)
	}
	if st, err := os.Stat(svc.Context); err != nil || !st.IsDir() {
		d.errorf(ctxPos, path+".context", "build context folder %s does not exist; create it or set context: to the service's folder", svc.Context)
		return svc
	}
	// A context that is a symbolic link is followed once, here: the build,
	// the prebuild state and the watcher all use the target (a walk does not
	// follow a link at its root).
	if real, err := filepath.EvalSymlinks(svc.Context); err == nil {
		svc.Context = real
	} else {
		d.errorf(ctxPos, path+".context", "resolving the build context folder %s: %v", svc.Context, err)
		return svc
	}
	dfPos := ctxPos
	df := DefaultDockerfile
	if dockerfileNode != nil {
		dfPos, df = dockerfileNode, svc.Dockerfile
	}
	svc.Dockerfile = filepath.Clean(filepath.Join(svc.Context, df))
	if filepath.IsAbs(df) {
		svc.Dockerfile = df
	}
	if st, err := os.Stat(svc.Dockerfile); err != nil || st.IsDir() {
		d.errorf(dfPos, path+".dockerfile", "%s does not exist; write a Dockerfile there or set dockerfile: (relative to the context)", svc.Dockerfile)
	}
	sort.Strings(svc.Watch)
	return svc
}

// ports reads a service's ports: a mapping of the service's port to a host
// port (0: chosen by devenv).
func (d *decoder) ports(n *yaml.Node, path string) []Forward {
	var out []Forward
	d.entries(n, path, "the service's port to a host port, e.g. {8080: 18080}", func(k, v *yaml.Node) {
		field := join(path, k.Value)
		port := d.integer(k, field, 1, 65535, "container port")
		host := d.integer(v, field, 0, 65535, "host port")
		if port == 0 || (host == 0 && (v.Tag != "!!int" || v.Value != "0")) {
			return // reported
		}
		out = append(out, Forward{Port: port, HostPort: host, Pos: d.pos(k)})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Port < out[j].Port })
	return out
}

// secret decodes where a secret comes from. Its errors never repeat what was
// written as a value: a user who wrote the secret itself there (password:
// hunter2) must not find it in a CI log.
func (d *decoder) secret(key, n *yaml.Node, field string, s *schemaNode) (Secret, bool) {
	sec := Secret{Field: field, Pos: d.pos(key)}
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		d.errorf(key, field, "expected {env: VAR} or {file: ./path}, optionally with default:; got a plain value (a secret's value is never written in devenv.yaml)")
		return sec, false
	}
	d.object(n, field, s, func(k string, _, v *yaml.Node) {
		switch k {
		case "env":
			sec.Env = d.str(v, field+".env")
			if msgs := validation.IsEnvVarName(sec.Env); len(msgs) > 0 {
				d.errorf(v, field+".env", "not a valid environment variable name (letters, digits and _, not starting with a digit)")
			}
		case "file":
			sec.File = d.filePath(v, field+".file")
		case "default":
			sec.Default, sec.HasDefault = d.str(v, field+".default"), true
		}
	})
	switch {
	case isNull(n) || n.Kind == yaml.MappingNode && sec.Env == "" && sec.File == "":
		d.errorf(key, field, "say where the value comes from: {env: VAR} or {file: ./path}, optionally with default:")
		return sec, false
	case sec.Env != "" && sec.File != "":
		d.errorf(key, field, "env and file are both set; keep one")
		return sec, false
	}
	return sec, n.Kind == yaml.MappingNode
}

// patterns checks each ignore or watch pattern of list n the way the watcher
// compiles it (see checkPattern), so a pattern that can never match is an
// error now rather than when watching starts.
func (d *decoder) patterns(n *yaml.Node, path string) {
	if n.Kind != yaml.SequenceNode {
		return // strList reported it
	}
	for i, c := range n.Content {
		c = deref(c)
		if c.Kind != yaml.ScalarNode || isNull(c) {
			continue
		}
		if err := checkPattern(c.Value); err != nil {
			d.errorf(c, fmt.Sprintf("%s[%d]", path, i), "pattern %q does not compile: %v; patterns use the .dockerignore syntax (*, ?, [a-z], **, a leading ! to keep)", c.Value, err)
		}
	}
}

// checkPattern compiles one ignore or watch pattern as the watcher does:
// cleaned like a .dockerignore line (ignorefile.ReadAll) and compiled by
// patternmatcher.New. TestPatternCheckAgreesWithWatcher keeps the two in step.
func checkPattern(p string) error {
	pats, err := ignorefile.ReadAll(strings.NewReader(p))
	if err != nil {
		pats = []string{p}
	}
	_, err = patternmatcher.New(pats)
	return err
}
