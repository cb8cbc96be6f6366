package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation"
)

// ExternalIP is the address of kafka.external when it is an IP; false when
// devenv runs the broker or kafka.external is a DNS name.
func (k *Kafka) ExternalIP() (netip.Addr, bool) { return externalIP(k.External) }

// ExternalHostPort splits kafka.external; "", 0 when devenv runs the broker.
func (k *Kafka) ExternalHostPort() (host string, port int) { return externalHostPort(k.External) }

// ExternalIP is the address of h2.external when it is an IP; false when
// devenv runs the server (or none) or h2.external is a DNS name.
func (h *H2) ExternalIP() (netip.Addr, bool) { return externalIP(h.External) }

// ExternalHostPort splits h2.external; "", 0 when devenv runs the server.
func (h *H2) ExternalHostPort() (host string, port int) { return externalHostPort(h.External) }

func externalIP(ext string) (netip.Addr, bool) {
	host, _ := externalHostPort(ext)
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func externalHostPort(ext string) (string, int) {
	host, p, err := net.SplitHostPort(ext)
	if err != nil {
		return "", 0
	}
	port, _ := strconv.Atoi(p)
	return host, port
}

// parseExternal checks HOST:PORT of a broker or server devenv does not run:
// an IPv4 address the cluster's pods can reach, or a DNS name for an
// ExternalName Service.
func parseExternal(ext string) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(ext)
	if err != nil || host == "" {
		return "", 0, fmt.Errorf("expected HOST:PORT, e.g. 10.0.0.5:9092 or broker.example.com:9092")
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		switch {
		case a.IsLoopback() || a.IsUnspecified():
			return "", 0, fmt.Errorf("%s is this machine's own (loopback or unspecified) address, which pods cannot reach: a pod's %s is the pod itself; use an address of this machine on a network the cluster's nodes reach", a, a)
		case a.Is6():
			return "", 0, fmt.Errorf("IPv6 addresses are not supported here yet; use an IPv4 address or a DNS name")
		case a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsLinkLocalMulticast():
			return "", 0, fmt.Errorf("%s is a link-local or multicast address, which the API server refuses in endpoints; use a unicast address the cluster's nodes reach", a)
		}
		return a.String(), port, nil
	}
	name := strings.TrimSuffix(host, ".")
	if strings.EqualFold(name, "localhost") || strings.HasSuffix(strings.ToLower(name), ".localhost") {
		return "", 0, fmt.Errorf("%s is, inside a pod, the pod itself; use an address or a name the cluster's nodes reach", host)
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return "", 0, fmt.Errorf("%q is neither an IPv4 address nor a DNS name (%s)", host, strings.Join(msgs, "; "))
	}
	return name, port, nil
}

// setting is a field of a kafka: or h2: section and where it was written;
// node is nil when the field is not set.
type setting struct {
	field string
	node  *yaml.Node
}

// external reads section.external at n into *ext ("host:port", normalised)
// and refuses the settings of the container devenv would run (which have
// no effect with it), naming both places. A setting written in a file
// before the one that sets external is overridden by it instead, so that
// an override file can point a project at an existing broker. It returns
// false when external is invalid.
func (d *decoder) external(section string, n *yaml.Node, ext *string, container []setting) (ok bool) {
	field := section + ".external"
	raw := d.str(n, field)
	host, port, err := parseExternal(raw)
	if err != nil {
		d.errorf(n, field, "%q: %v", raw, err)
		return false
	}
	*ext = net.JoinHostPort(host, strconv.Itoa(port))
	ep := d.pos(n)
	for _, s := range container {
		if s.node == nil {
			continue
		}
		if d.before(s.node, n) {
			continue // overridden by external
		}
		d.errorf(s.node, s.field, "devenv does not run the %s of %s (%s:%d), so %s has no effect; remove it", what(section), field, ep.File, ep.Line, s.field)
	}
	return true
}

// externalPort applies the port rule of an external DNS name: an
// ExternalName Service does not remap ports, so the Service's port is the
// external port, and another port: (in the same file as external or a
// later one) is refused.
func (d *decoder) externalPort(section string, extNode, portNode *yaml.Node, ext string, port *int) {
	host, extPort := externalHostPort(ext)
	if isIP(host) {
		return // an IP: the Service maps port to the external port
	}
	if portNode != nil && *port != extPort && *port != 0 && !d.before(portNode, extNode) {
		ep := d.pos(extNode)
		d.errorf(portNode, section+".port", "%s.external (%s:%d) is a DNS name, so the Service is of type ExternalName, which does not remap ports: pods connect to port %d; remove port: or set it to %d", section, ep.File, ep.Line, extPort, extPort)
	}
	*port = extPort
}

func isIP(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}

func what(section string) string {
	if section == "kafka" {
		return "broker"
	}
	return "H2 server"
}
