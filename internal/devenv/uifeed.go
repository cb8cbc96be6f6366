package devenv

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/testrun"
	"github.com/devenv-tool/devenv/internal/ui"
)

// Observer is told what Up and Watch do, as it happens: the browser view
// (internal/ui.Hub) implements it. Its methods are called from several
// goroutines and must not block.
type Observer interface {
	// Status is the environment's state: checked at the start of Up, at
	// its end, and every statusEvery while watching (at once after a save).
	Status(ui.Status)
	// SaveStarted opens a run of work: "up", or a "save" or "config"
	// change of the services named; SaveEnded closes it. Step reports each
	// step that ended meanwhile, with the name its terminal line gives it.
	SaveStarted(trigger string, services []string)
	Step(name string, start time.Time, d time.Duration, ok, stopped bool)
	SaveEnded()
	// Applied says how a service was brought up to date (ui.HowLive, …),
	// or that it failed.
	Applied(ui.Update)
	// Log is one line of a service's pods' output while watching.
	Log(service, line string)
	// TestResult is a declared test's result while watching.
	TestResult(ui.Test)
}

// statusEvery is how often Watch checks the environment's state for the
// Observer.
const statusEvery = 3 * time.Second

type nopObserver struct{}

func (nopObserver) Status(ui.Status)                                  {}
func (nopObserver) SaveStarted(string, []string)                      {}
func (nopObserver) Step(string, time.Time, time.Duration, bool, bool) {}
func (nopObserver) SaveEnded()                                        {}
func (nopObserver) Applied(ui.Update)                                 {}
func (nopObserver) Log(string, string)                                {}
func (nopObserver) TestResult(ui.Test)                                {}

func (o Options) observer() Observer {
	if o.Observer == nil {
		return nopObserver{}
	}
	return o.Observer
}

// serviceNames lists cfg's services in order.
func serviceNames(cfg *config.Config) []string {
	names := make([]string, 0, len(cfg.Services))
	for _, s := range cfg.Services {
		names = append(names, s.Name)
	}
	return names
}

// configStatus is what the Observer gets before anything was checked: the
// parts and services cfg asks for, none ready yet.
func configStatus(cfg *config.Config) ui.Status {
	st := ui.Status{Project: cfg.Name, Namespace: cfg.Namespace, Kafka: cfg.Kafka != nil}
	st.Parts = append(st.Parts, ui.Part{Kind: "cluster", Name: clusterName(cfg), Address: "context " + clusterContext(cfg), Message: "starting"})
	if cfg.Kafka != nil {
		st.Parts = append(st.Parts, ui.Part{Kind: "kafka", Address: cfg.Kafka.Address(), Message: "starting"})
	}
	if cfg.H2.Mode == config.H2Server {
		st.Parts = append(st.Parts, ui.Part{Kind: "h2", Message: "starting"})
	}
	for _, s := range cfg.Services {
		st.Services = append(st.Services, uiService(s, ServiceStatus{Name: s.Name, Message: "starting"}, nil))
	}
	return st
}

// uiService is a service as the page shows it. Its secrets appear by
// name only: their values never leave the config.
func uiService(s *config.Service, ss ServiceStatus, fwds []ForwardStatus) ui.Service {
	us := ui.Service{Name: ss.Name, Ready: ss.OK, ReadyPods: ss.Ready, Desired: ss.Desired, Image: ss.Image, Message: ss.Message}
	if s != nil {
		us.Address = s.Address()
		us.Secrets = config.SortedKeys(s.Secrets)
	}
	for _, f := range fwds {
		if f.Service == ss.Name && f.Forwarding {
			us.Forwards = append(us.Forwards, f.HostAddress)
		}
	}
	return us
}

// uiStatus checks every part of the running environment, as Status does,
// through the Env's own connections.
func (e *Env) uiStatus(ctx context.Context, cfg *config.Config) ui.Status {
	st := ui.Status{Project: cfg.Name, Namespace: cfg.Namespace, Kafka: cfg.Kafka != nil}
	cs := ClusterStatus{Name: clusterName(cfg), Context: clusterContext(cfg)}
	c := e.Cluster
	if c == nil {
		cs.Message = "no cluster connection"
	} else if err := c.Ping(ctx); err != nil {
		cs.Message = err.Error()
		c = nil
	} else {
		cs.Ready = true
	}
	st.Parts = append(st.Parts, ui.Part{Kind: "cluster", Name: cs.Name, Ready: cs.Ready, Address: "context " + cs.Context, Message: cs.Message})
	var ext []ExternalStatus
	if cfg.Kafka != nil {
		ext = append(ext, kafkaStatus(ctx, e.docker, c, cfg))
	}
	if cfg.H2.Mode == config.H2Server {
		ext = append(ext, h2Status(ctx, e.docker, c, cfg))
	}
	st.Ready = cs.Ready
	for _, x := range ext {
		st.Parts = append(st.Parts, ui.Part{Kind: x.Component, Name: x.Container, Ready: x.Ready, Image: x.Image, IP: x.IP,
			Host: x.HostAddress, Address: x.Service, Message: x.Message})
		st.Ready = st.Ready && x.Ready
	}
	fwds := forwardStatus(cfg)
	for _, s := range cfg.Services {
		ss := serviceStatus(ctx, c, cfg.Namespace, s.Name)
		st.Services = append(st.Services, uiService(s, ss, fwds))
		st.Ready = st.Ready && ss.OK
	}
	return st
}

// reportStatus gives the Observer the environment's state every
// statusEvery, and at once on kick, until ctx ends; cfg is the loop's
// current configuration.
func (e *Env) reportStatus(ctx context.Context, cfg *atomic.Pointer[config.Config], kick <-chan struct{}) {
	obs := e.opts.observer()
	tick := time.NewTicker(statusEvery)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, statusEvery)
		st := e.uiStatus(cctx, cfg.Load())
		cancel()
		if ctx.Err() != nil {
			return
		}
		obs.Status(st)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-kick:
		}
	}
}

// uiTest is a declared test's result as the page shows it.
func uiTest(r testrun.Result) ui.Test {
	t := ui.Test{Name: r.Name, Status: string(r.Status), Duration: ui.Millis(r.Duration)}
	if r.Err != nil {
		t.Error = r.Err.Error()
	}
	return t
}

// KafkaView is the broker of the environment as the browser view reads
// it (topics, a live tail), or nil without Kafka.
func (e *Env) KafkaView() ui.Kafka {
	if e.Kafka == nil {
		return nil
	}
	return kafkaView{addr: e.Kafka.HostAddress}
}
