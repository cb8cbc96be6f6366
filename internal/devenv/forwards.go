package devenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/dirs"
)

// ForwardStatus is one declared port of a service (ports: in devenv.yaml)
// and whether a devenv up forwards it now.
type ForwardStatus struct {
	Service     string `json:"service"`
	Port        int    `json:"port"`        // the service's port
	HostPort    int    `json:"hostPort"`    // 0: devenv has not chosen one yet
	HostAddress string `json:"hostAddress"` // 127.0.0.1:<hostPort>, "" while none is chosen
	Forwarding  bool   `json:"forwarding"`  // a devenv up that watches forwards it now
	Message     string `json:"message,omitempty"`
}

// keptPorts is what devenv keeps about a project's forwards in its state
// folder: the host ports it chose (for ports: {PORT: 0}), so that they stay
// the same across runs, and which devenv up forwards now.
type keptPorts struct {
	Chosen     map[string]int `json:"chosen"`               // "service:port" -> host port
	PID        int            `json:"pid,omitempty"`        // the devenv up forwarding, 0 for none
	Forwarding map[string]int `json:"forwarding,omitempty"` // "service:port" -> host port, while PID forwards
}

func portKey(service string, port int) string { return service + ":" + strconv.Itoa(port) }

// portsFile is the file keeping project's host ports, in devenv's state folder.
func portsFile(project string) (string, error) {
	dir, err := dirs.State()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "ports-"+project+".json"), nil
}

// loadPorts reads the kept ports; a missing file is an empty record.
func loadPorts(path string) (keptPorts, error) {
	kp := keptPorts{Chosen: map[string]int{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return kp, nil
	}
	if err != nil {
		return kp, fmt.Errorf("reading the kept host ports: %w", err)
	}
	if err := json.Unmarshal(b, &kp); err != nil {
		return keptPorts{Chosen: map[string]int{}}, fmt.Errorf("reading the kept host ports %s: %w (delete the file: devenv chooses new ones)", path, err)
	}
	if kp.Chosen == nil {
		kp.Chosen = map[string]int{}
	}
	return kp, nil
}

// savePorts writes the kept ports whole (a new file renamed into place).
func savePorts(path string, kp keptPorts) error {
	b, err := json.MarshalIndent(kp, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("keeping the host ports: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("keeping the host ports: %w", err)
	}
	return nil
}

// wantForward is one port to forward, with its host port resolved.
type wantForward struct {
	service  string
	port     int
	hostPort int
	chosen   bool // devenv chose the host port (ports: {PORT: 0})
}

// resolvePorts gives every declared port its host port: the one written in
// the config, else the one kept, else (when free is not nil) a new one from
// free, recorded in kp.Chosen. A kept port that the config now gives to
// another port, or to kafka.hostPort, is not reused. It reports whether
// kp.Chosen changed. With a nil free, a port without one keeps host port 0.
func resolvePorts(cfg *config.Config, kp *keptPorts, free func() (int, error)) ([]wantForward, bool, error) {
	taken := map[int]bool{}
	if cfg.Kafka != nil && cfg.Kafka.HostPort != 0 {
		taken[cfg.Kafka.HostPort] = true
	}
	for _, s := range cfg.Services {
		for _, f := range s.Ports {
			taken[f.HostPort] = f.HostPort != 0
		}
	}
	var out []wantForward
	changed := false
	for _, s := range cfg.Services {
		for _, f := range s.Ports {
			w := wantForward{service: s.Name, port: f.Port, hostPort: f.HostPort}
			if w.hostPort == 0 {
				w.chosen = true
				key := portKey(s.Name, f.Port)
				if p, ok := kp.Chosen[key]; ok && p > 0 && p <= 65535 && !taken[p] {
					w.hostPort = p
				} else if free != nil {
					for range 20 {
						p, err := free()
						if err != nil {
							return nil, changed, fmt.Errorf("choosing a host port for service %s port %d: %w", s.Name, f.Port, err)
						}
						if !taken[p] {
							w.hostPort = p
							break
						}
					}
					if w.hostPort == 0 {
						return nil, changed, fmt.Errorf("choosing a host port for service %s port %d: no free port found", s.Name, f.Port)
					}
					kp.Chosen[key] = w.hostPort
					changed = true
				}
				taken[w.hostPort] = w.hostPort != 0
			}
			out = append(out, w)
		}
	}
	return out, changed, nil
}

// freeHostPort asks the kernel for a free port on 127.0.0.1.
func freeHostPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startForwards forwards every declared port of the services to 127.0.0.1
// (see cluster.Forward) and records them in the state folder for devenv
// status. A port that cannot be forwarded is reported and the others go on.
// stop closes them.
func (e *Env) startForwards(ctx context.Context) (stop func()) {
	lg := e.opts.logger()
	cfg := e.Config
	n := 0
	for _, s := range cfg.Services {
		n += len(s.Ports)
	}
	if n == 0 || e.Cluster == nil {
		return func() {}
	}
	path, err := portsFile(projectKey(cfg))
	if err != nil {
		lg.Warnf("not forwarding the services' ports: %v", err)
		return func() {}
	}
	kp, err := loadPorts(path)
	if err != nil {
		lg.Warnf("%v", err)
	}
	want, _, err := resolvePorts(cfg, &kp, freeHostPort)
	if err != nil {
		lg.Warnf("not forwarding the services' ports: %v", err)
		return func() {}
	}
	var fwds []*cluster.Forward
	kp.PID, kp.Forwarding = os.Getpid(), map[string]int{}
	for _, w := range want {
		spec := cluster.ForwardSpec{Namespace: cfg.Namespace, Service: w.service, Port: w.port, HostPort: w.hostPort}
		f, err := e.Cluster.Forward(ctx, spec)
		if errors.Is(err, cluster.ErrPortTaken) && w.chosen {
			// A port devenv chose is taken now: choose another and keep it.
			if p, perr := freeHostPort(); perr == nil {
				lg.Warnf("host port %d, kept for service %s port %d, is taken by another program: using %d from now on", w.hostPort, w.service, w.port, p)
				spec.HostPort = p
				kp.Chosen[portKey(w.service, w.port)] = p
				f, err = e.Cluster.Forward(ctx, spec)
			}
		}
		if err != nil {
			lg.Warnf("%v", err)
			continue
		}
		lg.Infof("✓ forwarding %s -> %s:%d", f.Addr(), w.service, w.port)
		kp.Forwarding[portKey(w.service, w.port)] = f.HostPort()
		fwds = append(fwds, f)
	}
	if err := savePorts(path, kp); err != nil {
		lg.Warnf("%v", err)
	}
	return func() {
		for _, f := range fwds {
			_ = f.Close()
		}
		kp, err := loadPorts(path)
		if err == nil && kp.PID == os.Getpid() {
			kp.PID, kp.Forwarding = 0, nil
			err = savePorts(path, kp)
		}
		if err != nil {
			lg.Debugf("recording that the forwards stopped: %v", err)
		}
	}
}

// forwardStatus lists the declared ports with their host ports, and whether
// a running devenv up forwards them. It chooses no port.
func forwardStatus(cfg *config.Config) []ForwardStatus {
	var kp keptPorts
	path, err := portsFile(projectKey(cfg))
	if err == nil {
		kp, err = loadPorts(path)
	}
	if kp.Chosen == nil {
		kp.Chosen = map[string]int{}
	}
	want, _, _ := resolvePorts(cfg, &kp, nil)
	alive := kp.PID != 0 && processAlive(kp.PID)
	out := []ForwardStatus{}
	for _, w := range want {
		fs := ForwardStatus{Service: w.service, Port: w.port, HostPort: w.hostPort}
		key := portKey(w.service, w.port)
		if p, ok := kp.Forwarding[key]; ok && alive {
			fs.HostPort, fs.Forwarding = p, true
		}
		if fs.HostPort != 0 {
			fs.HostAddress = net.JoinHostPort("127.0.0.1", strconv.Itoa(fs.HostPort))
		}
		switch {
		case fs.Forwarding:
		case err != nil:
			fs.Message = "not forwarding: " + err.Error()
		case fs.HostPort == 0:
			fs.Message = "not forwarding; the host port is chosen by the first devenv up that watches"
		case alive:
			fs.Message = fmt.Sprintf("not forwarding: devenv up (process %d) could not forward it; see its output", kp.PID)
		default:
			fs.Message = "not forwarding: no devenv up is watching"
		}
		out = append(out, fs)
	}
	return out
}

// processAlive reports whether a process with this id exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
