package cluster

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestPickSubnet(t *testing.T) {
	pp := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	tests := []struct {
		used []string
		want string
	}{
		{nil, "172.18.0.0/16"},
		{[]string{"172.17.0.0/16", "192.0.2.0/24", "0.0.0.0/0"}, "172.18.0.0/16"},
		{[]string{"172.18.5.0/24"}, "172.19.0.0/16"},
		{[]string{"172.16.0.0/12"}, ""},
		{[]string{"172.18.0.0/15", "172.20.0.0/16"}, "172.21.0.0/16"},
	}
	for _, tt := range tests {
		got, ok := pickSubnet(pp(tt.used...))
		if tt.want == "" {
			if ok {
				t.Errorf("%v: want none, got %v", tt.used, got)
			}
			continue
		}
		if !ok || got.String() != tt.want {
			t.Errorf("%v: got %v %v, want %s", tt.used, got, ok, tt.want)
		}
	}
}

func TestPickIP(t *testing.T) {
	a := netip.MustParseAddr
	n := Network{Subnet: netip.MustParsePrefix("172.18.0.0/16"), Gateway: a("172.18.0.1")}
	tests := []struct {
		name      string
		n         Network
		taken     []netip.Addr
		preferred netip.Addr
		want      string
	}{
		{"top when no preference", n, nil, netip.Addr{}, "172.18.255.254"},
		{"preferred free", n, nil, a("172.18.0.90"), "172.18.0.90"},
		{"preferred taken", n, []netip.Addr{a("172.18.0.90")}, a("172.18.0.90"), "172.18.255.254"},
		{"preferred outside", n, nil, a("10.0.0.1"), "172.18.255.254"},
		{"preferred is gateway", n, nil, a("172.18.0.1"), "172.18.255.254"},
		{"preferred is broadcast", n, nil, a("172.18.255.255"), "172.18.255.254"},
		{"skips taken from top", n, []netip.Addr{a("172.18.255.254"), a("172.18.255.253")}, netip.Addr{}, "172.18.255.252"},
		{"no subnet", Network{}, nil, a("172.18.0.9"), "invalid IP"},
		{"full /30", Network{Subnet: netip.MustParsePrefix("10.1.1.0/30")}, []netip.Addr{a("10.1.1.2")}, netip.Addr{}, "invalid IP"},
		{"/30 without gateway set", Network{Subnet: netip.MustParsePrefix("10.1.1.0/30")}, nil, netip.Addr{}, "10.1.1.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PickIP(tt.n, tt.taken, tt.preferred); got.String() != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseRoutes(t *testing.T) {
	in := `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00000000	010200C0	0003	0	0	0	00000000	0	0	0
docker0	000011AC	00000000	0001	0	0	0	0000FFFF	0	0	0
eth0	000200C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
`
	got, err := parseRoutes(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, p := range got {
		s = append(s, p.String())
	}
	if strings.Join(s, ",") != "172.17.0.0/16,192.0.2.0/24" {
		t.Errorf("got %v", s)
	}
}

func TestULASubnet(t *testing.T) {
	p := ulaSubnet("kind", 0)
	if p.Bits() != 64 || p.Addr().As16()[0] != 0xfc || p.Addr().As16()[1] != 0 {
		t.Errorf("not a ULA /64: %v", p)
	}
	if ulaSubnet("kind", 1) == p {
		t.Error("attempts should differ")
	}
}

func TestIPv6Unavailable(t *testing.T) {
	if !ipv6Unavailable(errors.New("Error response from daemon: Cannot read IPv6 setup for bridge br-x: open /proc/sys/net/ipv6/conf/br-x/disable_ipv6: no such file")) {
		t.Error("should match")
	}
	if ipv6Unavailable(errors.New("Pool overlaps with other one on this address space")) {
		t.Error("should not match")
	}
}
