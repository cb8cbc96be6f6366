package h2

import (
	"strings"
	"testing"
)

func TestJDBCURL(t *testing.T) {
	if got, want := JDBCURL("h2", 9092, "account"), "jdbc:h2:tcp://h2:9092/mem:account;DB_CLOSE_DELAY=-1"; got != want {
		t.Errorf("JDBCURL = %q, want %q", got, want)
	}
	if got, want := JDBCURL("::1", 1234, "x"), "jdbc:h2:tcp://[::1]:1234/mem:x;DB_CLOSE_DELAY=-1"; got != want {
		t.Errorf("JDBCURL = %q, want %q", got, want)
	}
	if got, want := MemURL("account"), "jdbc:h2:mem:account;DB_CLOSE_DELAY=-1"; got != want {
		t.Errorf("MemURL = %q, want %q", got, want)
	}
}

func TestSpecDefaults(t *testing.T) {
	s, err := Spec{Project: "shop"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if s.ContainerName != "devenv-shop-h2" || s.Image != DefaultImage || s.Port != 9092 || s.ReadyTimeout != DefaultReadyTimeout {
		t.Errorf("defaults = %+v", s)
	}
	if s.VolumeName() != "devenv-shop-h2-data" {
		t.Errorf("volume = %s", s.VolumeName())
	}
	l := s.labels("abc")
	if l[LabelProject] != "shop" || l[LabelComponent] != "h2" || l[LabelSpec] != "abc" {
		t.Errorf("labels = %v", l)
	}
}

func TestSpecErrors(t *testing.T) {
	tests := []struct {
		spec Spec
		want string
	}{
		{Spec{}, "project name is empty"},
		{Spec{Project: "p", Port: 70000}, "port 70000 is out of range"},
		{Spec{Project: "p", HostPort: -1}, "host port -1"},
		{Spec{Project: "p", IP: "nope", Network: "kind"}, `IP "nope" is not an IP address`},
		{Spec{Project: "p", IP: "172.18.0.9"}, "a fixed IP needs a network"},
		{Spec{Project: "p", Memory: -1}, "must not be negative"},
	}
	for _, tc := range tests {
		_, err := tc.spec.withDefaults()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("withDefaults(%+v) = %v, want error containing %q", tc.spec, err, tc.want)
		}
	}
}

func TestSpecHash(t *testing.T) {
	base := Spec{Project: "p", Image: DefaultImage, Port: 9092, Labels: map[string]string{"a": "1"}}
	h := base.hash("sha256:1")
	if h != base.hash("sha256:1") {
		t.Fatal("hash is not stable")
	}
	changed := []Spec{base, base, base, base, base}
	changed[0].Memory = 1 << 30
	changed[1].HostPort = 19092
	changed[2].Labels = map[string]string{"a": "2"}
	changed[3].Network = "kind"
	changed[4].CPU = 0.5
	for i, c := range changed {
		if c.hash("sha256:1") == h {
			t.Errorf("change %d does not change the hash", i)
		}
	}
	if base.hash("sha256:2") == h {
		t.Error("a rebuilt image does not change the hash")
	}
}

func TestCommandUsesPort(t *testing.T) {
	cmd := strings.Join(Spec{Port: 9999}.command(), " ")
	for _, want := range []string{"-tcpPort 9999", "-tcpAllowOthers", "-ifNotExists", "-baseDir /data", "org.h2.tools.Server"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("command %q lacks %q", cmd, want)
		}
	}
}
