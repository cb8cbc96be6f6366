package cluster

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/project"
)

// NetworkName is the Docker network kind puts its nodes on. devenv creates it
// first, so that external containers can join it while the cluster boots.
const NetworkName = project.NetworkName

// LabelOwned marks Docker objects devenv created.
const LabelOwned = project.LabelOwned

// Network is the kind Docker network as devenv sees it.
type Network struct {
	Name    string
	ID      string
	Subnet  netip.Prefix // the IPv4 subnet; zero if Docker reports none
	Gateway netip.Addr
	// FixedIPs is true when containers may be given a fixed address (docker
	// run --ip): Docker allows that only on networks created with a
	// user-configured subnet. When false, callers use Docker-assigned
	// addresses and re-point endpoints after a container is recreated.
	FixedIPs bool
}

// EnsureNetwork returns the kind network, creating it if missing with an
// explicit IPv4 subnet (the first /16 of 172.18.0.0/16..172.31.0.0/16 not used
// by another Docker network or a host route), kind's options (IP masquerade,
// the default bridge's MTU, an IPv6 ULA subnet when the engine supports IPv6)
// and the label devenv.dev/owned=true.
//
// A kind network that exists already is reused as it is (kind does the same);
// if devenv did not create it, fixed IPs are reported unavailable, unless no
// container uses it: then it is replaced by devenv's own.
func EnsureNetwork(ctx context.Context, opts Options) (Network, error) {
	docker, done, err := opts.docker(ctx)
	if err != nil {
		return Network{}, err
	}
	defer done()
	return ensureNetwork(ctx, docker, log.FromSlog(opts.Log))
}

func ensureNetwork(ctx context.Context, docker *client.Client, lg *log.Logger) (Network, error) {
	if n, ok, err := inspectNetwork(ctx, docker, NetworkName); err != nil {
		return Network{}, err
	} else if ok {
		if n.FixedIPs {
			return n, nil
		}
		// A kind network that nothing uses (kind leaves it behind after
		// `kind delete cluster`) is replaced by one with a fixed subnet.
		res, err := docker.NetworkInspect(ctx, n.ID, client.NetworkInspectOptions{})
		if err != nil || len(res.Network.Containers) > 0 {
			lg.Infof("Docker network %q exists but was not created by devenv with a fixed subnet: fixed container IPs are unavailable, endpoints follow the containers' assigned IPs", NetworkName)
			return n, nil
		}
		if _, err := docker.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil {
			lg.Infof("Docker network %q has no fixed subnet and could not be replaced (%v): fixed container IPs are unavailable", NetworkName, err)
			return n, nil
		}
		lg.Debugf("replaced the unused Docker network %q (no fixed subnet) with one devenv owns", NetworkName)
	}

	used, err := usedPrefixes(ctx, docker)
	if err != nil {
		return Network{}, err
	}
	subnet, ok := pickSubnet(used)
	if !ok {
		return Network{}, fmt.Errorf("creating Docker network %q: every /16 from 172.18.0.0 to 172.31.0.0 is used by another Docker network or a host route: remove an unused network (docker network prune)", NetworkName)
	}
	gateway := subnet.Addr().Next()

	opts := map[string]string{"com.docker.network.bridge.enable_ip_masquerade": "true"}
	if mtu := defaultBridgeMTU(ctx, docker); mtu > 0 {
		opts["com.docker.network.driver.mtu"] = strconv.Itoa(mtu)
	}
	create := func(ipv6 bool) error {
		ipam := &network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: subnet, Gateway: gateway}}}
		o := client.NetworkCreateOptions{
			Driver:  "bridge",
			Options: opts,
			Labels:  map[string]string{LabelOwned: "true"},
			IPAM:    ipam,
		}
		if ipv6 {
			on := true
			o.EnableIPv6 = &on
			ipam.Config = append(ipam.Config, network.IPAMConfig{Subnet: ulaSubnet(NetworkName, 0)})
		}
		_, err := docker.NetworkCreate(ctx, NetworkName, o)
		return err
	}
	err = create(true)
	if err != nil && ipv6Unavailable(err) {
		lg.Debugf("IPv6 is unavailable on this Docker engine; creating network %q with IPv4 only", NetworkName)
		err = create(false)
	}
	if err != nil {
		// Another process may have created it meanwhile.
		if n, ok, ierr := inspectNetwork(ctx, docker, NetworkName); ierr == nil && ok {
			return n, nil
		}
		return Network{}, fmt.Errorf("creating Docker network %q with subnet %s: %w", NetworkName, subnet, err)
	}
	lg.Debugf("created Docker network %q with subnet %s", NetworkName, subnet)
	n, ok, err := inspectNetwork(ctx, docker, NetworkName)
	if err != nil {
		return Network{}, err
	}
	if !ok {
		return Network{}, fmt.Errorf("Docker network %q vanished right after it was created", NetworkName)
	}
	return n, nil
}

// inspectNetwork finds the network by exact name.
func inspectNetwork(ctx context.Context, docker *client.Client, name string) (Network, bool, error) {
	res, err := docker.NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("name", "^"+name+"$")})
	if err != nil {
		return Network{}, false, fmt.Errorf("listing Docker networks: %w", err)
	}
	for _, s := range res.Items {
		if s.Name != name {
			continue
		}
		n := Network{Name: s.Name, ID: s.ID}
		for _, c := range s.IPAM.Config {
			if c.Subnet.IsValid() && c.Subnet.Addr().Is4() {
				n.Subnet, n.Gateway = c.Subnet.Masked(), c.Gateway
				break
			}
		}
		if n.Subnet.IsValid() && !n.Gateway.IsValid() {
			n.Gateway = n.Subnet.Addr().Next()
		}
		// Docker's inspect output does not say whether a subnet was configured
		// by the user or picked by IPAM; only devenv's own network is known to
		// have a configured one.
		n.FixedIPs = s.Labels[LabelOwned] == "true" && n.Subnet.IsValid()
		return n, true, nil
	}
	return Network{}, false, nil
}

// TakenIPs returns the IPv4 addresses of the containers attached to the network.
func TakenIPs(ctx context.Context, docker *client.Client, n Network) ([]netip.Addr, error) {
	res, err := docker.NetworkInspect(ctx, n.Name, client.NetworkInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("inspecting Docker network %q: %w", n.Name, err)
	}
	var out []netip.Addr
	for _, c := range res.Network.Containers {
		if c.IPv4Address.IsValid() {
			out = append(out, c.IPv4Address.Addr())
		}
	}
	return out, nil
}

// PickIP returns an address for a container on n: preferred if it is a free
// host address of the subnet, otherwise the highest free one, counting down
// (Docker assigns dynamic addresses from the bottom, so the top stays clear).
// The network address, the broadcast address, the gateway and taken are never
// returned. It returns the zero Addr when nothing is free or the subnet is unset.
func PickIP(n Network, taken []netip.Addr, preferred netip.Addr) netip.Addr {
	p := n.Subnet.Masked()
	if !p.IsValid() || !p.Addr().Is4() || p.Bits() > 30 {
		return netip.Addr{}
	}
	first := p.Addr()
	last := lastAddr(p)
	used := map[netip.Addr]bool{first: true, last: true}
	if n.Gateway.IsValid() {
		used[n.Gateway] = true
	} else {
		used[first.Next()] = true
	}
	for _, a := range taken {
		used[a.Unmap()] = true
	}
	if preferred.IsValid() && p.Contains(preferred.Unmap()) && !used[preferred.Unmap()] {
		return preferred.Unmap()
	}
	for a := last.Prev(); a.IsValid() && p.Contains(a); a = a.Prev() {
		if !used[a] {
			return a
		}
	}
	return netip.Addr{}
}

// lastAddr is the highest address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	v := binary.BigEndian.Uint32(b[:]) | (uint32(1)<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// pickSubnet returns the first /16 of 172.18.0.0/16..172.31.0.0/16 that
// overlaps none of used.
func pickSubnet(used []netip.Prefix) (netip.Prefix, bool) {
	for second := 18; second <= 31; second++ {
		cand := netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(second), 0, 0}), 16)
		free := true
		for _, u := range used {
			if u.IsValid() && u.Bits() > 0 && u.Overlaps(cand) {
				free = false
				break
			}
		}
		if free {
			return cand, true
		}
	}
	return netip.Prefix{}, false
}

// usedPrefixes are the IPv4 subnets of every Docker network plus the host's routes.
func usedPrefixes(ctx context.Context, docker *client.Client) ([]netip.Prefix, error) {
	res, err := docker.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing Docker networks: %w", err)
	}
	var used []netip.Prefix
	for _, s := range res.Items {
		for _, c := range s.IPAM.Config {
			if c.Subnet.IsValid() && c.Subnet.Addr().Is4() {
				used = append(used, c.Subnet)
			}
		}
	}
	if f, err := os.Open("/proc/net/route"); err == nil {
		routes, perr := parseRoutes(f)
		f.Close()
		if perr == nil {
			used = append(used, routes...)
		}
	}
	return used, nil
}

// parseRoutes reads /proc/net/route, skipping default routes.
func parseRoutes(r io.Reader) ([]netip.Prefix, error) {
	var out []netip.Prefix
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 8 {
			continue
		}
		dst, err1 := hexLE(f[1])
		mask, err2 := hexLE(f[7])
		if err1 != nil || err2 != nil {
			continue
		}
		ones := 0
		for m := binary.BigEndian.Uint32(mask[:]); m&0x80000000 != 0; m <<= 1 {
			ones++
		}
		if ones == 0 {
			continue
		}
		out = append(out, netip.PrefixFrom(netip.AddrFrom4(dst), ones).Masked())
	}
	return out, sc.Err()
}

// hexLE decodes the little-endian hex IPv4 notation of /proc/net/route.
func hexLE(s string) ([4]byte, error) {
	var a [4]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return a, fmt.Errorf("bad address %q", s)
	}
	a[0], a[1], a[2], a[3] = b[3], b[2], b[1], b[0]
	return a, nil
}

// defaultBridgeMTU is the MTU option of Docker's default bridge network, or 0.
func defaultBridgeMTU(ctx context.Context, docker *client.Client) int {
	res, err := docker.NetworkInspect(ctx, "bridge", client.NetworkInspectOptions{})
	if err != nil {
		return 0
	}
	mtu, err := strconv.Atoi(res.Network.Options["com.docker.network.driver.mtu"])
	if err != nil {
		return 0
	}
	return mtu
}

// ulaSubnet is kind's IPv6 subnet for a network name: fc00:<hash>::/64.
func ulaSubnet(name string, attempt int32) netip.Prefix {
	var ip [16]byte
	ip[0] = 0xfc
	h := sha1.New()
	_, _ = h.Write([]byte(name))
	_ = binary.Write(h, binary.LittleEndian, attempt)
	bs := h.Sum(nil)
	copy(ip[2:8], bs[2:8])
	return netip.PrefixFrom(netip.AddrFrom16(ip), 64)
}

// ipv6Unavailable matches the engine errors kind treats as "no IPv6 here".
func ipv6Unavailable(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Cannot read IPv6 setup for bridge") ||
		strings.Contains(msg, "ip6tables") ||
		strings.Contains(msg, "IPv6") && strings.Contains(msg, "disabled")
}
