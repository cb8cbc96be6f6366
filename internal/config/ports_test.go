package config

import (
	"reflect"
	"testing"
)

func TestLoadPorts(t *testing.T) {
	cfg, err := Load("testdata/valid-ports.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f := "testdata/valid-ports.yaml"
	for _, tc := range []struct {
		service string
		want    []Forward
	}{
		{"account", []Forward{{Port: 8080, HostPort: 18080, Pos: Pos{f, 7}}}},
		{"payments", []Forward{{Port: 9000, HostPort: 0, Pos: Pos{f, 11}}}},
	} {
		s := cfg.Service(tc.service)
		if s == nil {
			t.Fatalf("service %s missing", tc.service)
		}
		if !reflect.DeepEqual(s.Ports, tc.want) {
			t.Errorf("%s ports = %+v, want %+v", tc.service, s.Ports, tc.want)
		}
	}
	min, err := Load("testdata/valid-minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p := min.Service("account").Ports; p != nil {
		t.Errorf("ports without ports: = %+v, want none", p)
	}
}
