package devenv

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/dirs"
)

func portsConfig() *config.Config {
	return &config.Config{Name: "shop", Kafka: &config.Kafka{HostPort: 29092}, Services: []*config.Service{
		{Name: "account", Port: 8080, Ports: []config.Forward{{Port: 8080, HostPort: 18080}}},
		{Name: "payments", Port: 9000, Ports: []config.Forward{{Port: 9000}}},
		{Name: "quiet", Port: 7000},
	}}
}

// seq returns a free-port function handing out ports in order.
func seq(ports ...int) func() (int, error) {
	return func() (int, error) {
		p := ports[0]
		ports = ports[1:]
		return p, nil
	}
}

func TestResolvePorts(t *testing.T) {
	for _, tc := range []struct {
		name        string
		kept        map[string]int
		free        func() (int, error)
		want        []wantForward
		wantChanged bool
		wantKept    map[string]int
	}{
		{"first run chooses and keeps", nil, seq(40001),
			[]wantForward{{"account", 8080, 18080, false}, {"payments", 9000, 40001, true}}, true, map[string]int{"payments:9000": 40001}},
		{"a kept port is reused", map[string]int{"payments:9000": 40001}, seq(40002),
			[]wantForward{{"account", 8080, 18080, false}, {"payments", 9000, 40001, true}}, false, map[string]int{"payments:9000": 40001}},
		{"a chosen port clashing with a written one is chosen anew", map[string]int{"payments:9000": 18080}, seq(29092, 18080, 40003),
			[]wantForward{{"account", 8080, 18080, false}, {"payments", 9000, 40003, true}}, true, map[string]int{"payments:9000": 40003}},
		{"status chooses nothing", nil, nil,
			[]wantForward{{"account", 8080, 18080, false}, {"payments", 9000, 0, true}}, false, map[string]int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kp := keptPorts{Chosen: map[string]int{}}
			for k, v := range tc.kept {
				kp.Chosen[k] = v
			}
			got, changed, err := resolvePorts(portsConfig(), &kp, tc.free)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) || changed != tc.wantChanged || !reflect.DeepEqual(kp.Chosen, tc.wantKept) {
				t.Errorf("got %+v changed %v kept %v\nwant %+v changed %v kept %v", got, changed, kp.Chosen, tc.want, tc.wantChanged, tc.wantKept)
			}
		})
	}
}

func TestKeptPortsAcrossRuns(t *testing.T) {
	t.Setenv(dirs.StateEnv, t.TempDir())
	cfg := portsConfig()
	path, err := portsFile(cfg.Name)
	if err != nil {
		t.Fatal(err)
	}
	// A run chooses a port and keeps it; the next run (a new load) gets the same.
	kp, err := loadPorts(path)
	if err != nil {
		t.Fatal(err)
	}
	first, _, err := resolvePorts(cfg, &kp, freeHostPort)
	if err != nil {
		t.Fatal(err)
	}
	if err := savePorts(path, kp); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("kept ports file: %v, mode %v; want 0600", err, fi.Mode())
	}
	kp2, err := loadPorts(path)
	if err != nil {
		t.Fatal(err)
	}
	second, changed, err := resolvePorts(cfg, &kp2, seq(1))
	if err != nil || changed || !reflect.DeepEqual(first, second) {
		t.Errorf("second run: %+v changed %v err %v; want %+v unchanged", second, changed, err, first)
	}

	// status: not forwarding, with the kept port.
	st := forwardStatus(cfg)
	if len(st) != 2 || st[1].HostPort != first[1].hostPort || st[1].Forwarding || st[1].Message != "not forwarding: no devenv up is watching" {
		t.Errorf("status without up = %+v", st)
	}
	// status while this process forwards.
	kp2.PID, kp2.Forwarding = os.Getpid(), map[string]int{"account:8080": 18080}
	if err := savePorts(path, kp2); err != nil {
		t.Fatal(err)
	}
	st = forwardStatus(cfg)
	if !st[0].Forwarding || st[0].HostAddress != "127.0.0.1:18080" || st[0].Message != "" || st[1].Forwarding {
		t.Errorf("status while forwarding = %+v", st)
	}

	// A broken file is an error that says what to do, and an empty record.
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if kp, err := loadPorts(path); err == nil || kp.Chosen == nil {
		t.Errorf("broken file: err %v, chosen %v", err, kp.Chosen)
	}
	if filepath.Dir(path) != os.Getenv(dirs.StateEnv) {
		t.Errorf("kept ports at %s, want in the state folder", path)
	}
}
