package config

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Registry is the image registry devenv pushes the services' images to
// (registry:), for a cluster that pulls them from there.
type Registry struct {
	Host   string // HOST or HOST:PORT, as written, e.g. localhost:5001 or registry.example.com
	Prefix string // repository path before each image's name, e.g. team/dev; "" for none
	// Insecure allows plain HTTP to a registry that is not on this
	// machine (insecure: true); see PlainHTTP.
	Insecure bool
	// Local is registry: local: a registry container devenv runs beside
	// its own kind cluster (as ctlptl does). Host is "" in the file; devenv
	// fills in localhost:<published port> when it starts the container.
	Local bool
	// None is registry: none: no registry; images are loaded straight into
	// the kind node (the default before registry: local was measured
	// faster).
	None bool
	// Default says devenv chose Local because registry: was absent (it
	// then falls back to loads on a cluster made before it could pull from
	// a registry, instead of failing).
	Default bool
	Pos     Pos // the registry key
}

// The values of registry: that are not addresses.
const (
	// RegistryLocal asks for devenv's own registry container (the default
	// on the kind cluster devenv creates).
	RegistryLocal = "local"
	// RegistryNone asks for no registry: images are loaded into the node.
	RegistryNone = "none"
)

// PlainHTTP reports whether devenv may talk plain HTTP to the registry:
// when insecure: true is set, or the host is localhost or a loopback IP
// (a registry on this machine).
func (r *Registry) PlainHTTP() bool {
	if r.Insecure {
		return true
	}
	host := r.hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// Ref is the reference of image repo with tag in the registry:
// HOST[:PORT]/PREFIX/repo:tag (without /PREFIX when there is none, without
// :tag when tag is "").
func (r *Registry) Ref(repo, tag string) string {
	ref := r.Host + "/"
	if r.Prefix != "" {
		ref += r.Prefix + "/"
	}
	ref += repo
	if tag != "" {
		ref += ":" + tag
	}
	return ref
}

// hostname is Host without its port and brackets.
func (r *Registry) hostname() string {
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		return h
	}
	return strings.Trim(r.Host, "[]")
}

var (
	// registryDomainRE is a DNS name as an image reference's domain allows it.
	registryDomainRE = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*$`)
	// repoPathRE is a repository path: lowercase components separated by /.
	repoPathRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
)

// registry decodes registry:, a string HOST[:PORT][/PREFIX] or a mapping
// {address: HOST[:PORT][/PREFIX], insecure: bool}. nil when it is null.
func (d *decoder) registry(key, n *yaml.Node, s *schemaNode) *Registry {
	if isNull(n) {
		return nil
	}
	r := &Registry{Pos: d.pos(key)}
	addrNode, field := n, "registry"
	switch n.Kind {
	case yaml.ScalarNode:
	case yaml.MappingNode:
		addrNode = nil
		d.object(n, "registry", s.OneOf[1], func(k string, _, v *yaml.Node) {
			switch k {
			case "address":
				addrNode, field = v, "registry.address"
			case "insecure":
				r.Insecure = d.boolean(v, "registry.insecure")
			}
		})
		if addrNode == nil {
			d.errorf(key, "registry.address", "missing; e.g. address: localhost:5001 or registry.example.com/team")
			return r
		}
	default:
		d.errorf(n, "registry", "expected HOST[:PORT][/PREFIX] (e.g. localhost:5001) or {address: ..., insecure: true}; got %s", describe(n))
		return r
	}
	addr := d.str(addrNode, field)
	if addr == RegistryLocal && field == "registry" {
		r.Local = true
		return r
	}
	if addr == RegistryNone && field == "registry" {
		r.None = true
		return r
	}
	host, prefix, err := parseRegistry(addr)
	if err != nil {
		d.errorf(addrNode, field, "%q: %v", addr, err)
		return r
	}
	r.Host, r.Prefix = host, prefix
	return r
}

// parseRegistry splits HOST[:PORT][/PREFIX] and checks its parts.
func parseRegistry(addr string) (host, prefix string, err error) {
	if strings.Contains(addr, "://") {
		return "", "", fmt.Errorf("write the address without a scheme, e.g. localhost:5001/team; plain HTTP is used for localhost and with insecure: true")
	}
	host, prefix, slash := strings.Cut(addr, "/")
	if host == "" {
		return "", "", fmt.Errorf("no host; expected HOST[:PORT][/PREFIX], e.g. localhost:5001 or registry.example.com/team")
	}
	name, port := host, ""
	if strings.HasPrefix(host, "[") || strings.Count(host, ":") == 1 {
		if name, port, err = net.SplitHostPort(host); err != nil {
			if !strings.HasPrefix(host, "[") || !strings.HasSuffix(host, "]") {
				return "", "", fmt.Errorf("expected HOST or HOST:PORT before the first /")
			}
			name, port = strings.Trim(host, "[]"), ""
		}
	} else if strings.Contains(host, ":") {
		return "", "", fmt.Errorf("an IPv6 address needs brackets, e.g. [fd00::1]:5000")
	}
	if port != "" {
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return "", "", fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
	}
	if a, err := netip.ParseAddr(name); err == nil {
		if a.Is6() && !strings.HasPrefix(host, "[") {
			return "", "", fmt.Errorf("an IPv6 address needs brackets, e.g. [fd00::1]:5000")
		}
	} else if len(name) > 253 || !registryDomainRE.MatchString(name) {
		return "", "", fmt.Errorf("host %q is neither a DNS name nor an IP address", name)
	}
	if slash && !repoPathRE.MatchString(prefix) {
		return "", "", fmt.Errorf("prefix %q is not a repository path: lowercase letters, digits and . _ - between them, components separated by /", prefix)
	}
	return host, prefix, nil
}
