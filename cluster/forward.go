package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// ErrPortTaken is returned (wrapped) by Forward when its host port is in use.
var ErrPortTaken = errors.New("host port is in use")

// forwardWait is how long a new connection waits for a Ready pod (while a
// container restarts after an image swap, or a rollout starts the new pod)
// before it is closed.
const forwardWait = 30 * time.Second

// ForwardSpec says what Forward forwards.
type ForwardSpec struct {
	Namespace string
	// Service is the Service whose pods (those its selector selects) receive
	// the connections.
	Service string
	// Port is a port of the Service: connections go to its targetPort on the
	// pod. A port the Service does not list is taken as a port of the pod.
	Port int
	// HostPort is the port listened on, on 127.0.0.1; 0 picks a free one.
	HostPort int
}

// Forward is a port-forward from 127.0.0.1 to a Service's pods, made with
// client-go's port-forward protocol (no kubectl). Each new connection goes to
// a Ready pod of the Service, the one most recently become Ready, so after an
// image swap or a rollout new connections reach the new version as soon as
// its pod is Ready: the pods are watched, not polled. Connections already
// open stay with their pod. A connection made while no pod is Ready waits
// for one (up to 30 s).
type Forward struct {
	spec   ForwardSpec
	ln     net.Listener
	log    logger
	dial   func(ctx context.Context, pod string) (httpstream.Connection, error)
	cancel context.CancelFunc
	done   chan struct{} // closed when the accept loop and the watch have ended

	selector labels.Selector
	svcPorts []corev1.ServicePort
	store    cache.Store

	mu      sync.Mutex
	changed chan struct{} // closed (and replaced) whenever the pods change
	conns   map[net.Conn]bool
	target  string // the pod the last connection went to
	closed  bool
}

// logger is the part of devenv's logger Forward uses.
type logger interface {
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
	Debugf(format string, args ...any)
}

// Forward starts forwarding 127.0.0.1:spec.HostPort to spec.Service's pods
// and returns once it listens and knows the pods. It runs until Close, or
// until ctx is done. A host port in use is an error wrapping ErrPortTaken.
func (c *Cluster) Forward(ctx context.Context, spec ForwardSpec) (*Forward, error) {
	return c.forward(ctx, spec, c.dialPod(spec.Namespace))
}

// forward is Forward with the way to reach a pod given (a fake in tests).
func (c *Cluster) forward(ctx context.Context, spec ForwardSpec, dial func(context.Context, string) (httpstream.Connection, error)) (*Forward, error) {
	what := fmt.Sprintf("forwarding service %s (namespace %s) port %d", spec.Service, spec.Namespace, spec.Port)
	if spec.Port < 1 || spec.Port > 65535 || spec.HostPort < 0 || spec.HostPort > 65535 {
		return nil, fmt.Errorf("%s: port %d or host port %d out of range", what, spec.Port, spec.HostPort)
	}
	svc, err := c.Client.CoreV1().Services(spec.Namespace).Get(ctx, spec.Service, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%s: the Service does not exist (is the environment up?)", what)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: reading the Service: %w", what, err)
	}
	if len(svc.Spec.Selector) == 0 {
		return nil, fmt.Errorf("%s: the Service has no selector, so no pods to forward to", what)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(spec.HostPort)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%s: %w: 127.0.0.1:%d is taken by another program; stop that program, or give service %s another host port (0 lets devenv choose a free one)",
				what, ErrPortTaken, spec.HostPort, spec.Service)
		}
		return nil, fmt.Errorf("%s: listening on 127.0.0.1:%d: %w", what, spec.HostPort, err)
	}
	f := newForward(spec, ln, c.log, svc, dial)
	if err := f.start(ctx, c); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return f, nil
}

func newForward(spec ForwardSpec, ln net.Listener, lg logger, svc *corev1.Service, dial func(context.Context, string) (httpstream.Connection, error)) *Forward {
	if spec.HostPort == 0 {
		spec.HostPort = ln.Addr().(*net.TCPAddr).Port
	}
	return &Forward{spec: spec, ln: ln, log: lg, dial: dial, done: make(chan struct{}),
		selector: labels.SelectorFromSet(svc.Spec.Selector), svcPorts: svc.Spec.Ports,
		changed: make(chan struct{}), conns: map[net.Conn]bool{}}
}

// start watches the Service's pods (an informer: a list, then a watch) and
// accepts connections.
func (f *Forward) start(ctx context.Context, c *Cluster) error {
	ctx, f.cancel = context.WithCancel(ctx)
	factory := informers.NewSharedInformerFactoryWithOptions(c.Client, 0, informers.WithNamespace(f.spec.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = f.selector.String() }))
	inf := factory.Core().V1().Pods().Informer()
	notify := func(any) { f.notify() }
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    notify,
		UpdateFunc: func(_, o any) { notify(o) },
		DeleteFunc: notify,
	}); err != nil {
		return fmt.Errorf("watching the pods: %w", err)
	}
	f.store = inf.GetStore()
	factory.Start(ctx.Done())
	syncCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
		f.cancel()
		factory.Shutdown()
		close(f.done)
		if err := ctx.Err(); err != nil {
			return err
		}
		return errors.New("listing the pods took over a minute")
	}
	go func() {
		defer close(f.done)
		defer factory.Shutdown()
		f.serve(ctx)
	}()
	go func() {
		<-ctx.Done()
		_ = f.ln.Close()
	}()
	return nil
}

// Addr is the address the forward listens on, 127.0.0.1:<host port>.
func (f *Forward) Addr() string { return f.ln.Addr().String() }

// HostPort is the port the forward listens on.
func (f *Forward) HostPort() int { return f.spec.HostPort }

// Spec is what the forward was made for, with the host port it listens on.
func (f *Forward) Spec() ForwardSpec { return f.spec }

// Target is the pod a new connection would go to now, "" when no pod of
// the Service is Ready.
func (f *Forward) Target() string {
	if p := f.pick(); p != nil {
		return p.Name
	}
	return ""
}

// Close stops listening, closes the open connections and stops watching.
func (f *Forward) Close() error {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	if f.cancel != nil {
		f.cancel()
	}
	err := f.ln.Close()
	if f.cancel != nil {
		<-f.done
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (f *Forward) notify() {
	f.mu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func (f *Forward) serve(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := f.ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				f.log.Warnf("forward %s -> %s: %v", f.Addr(), f.spec.Service, err)
			}
			return
		}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			_ = conn.Close()
			return
		}
		f.conns[conn] = true
		f.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				f.mu.Lock()
				delete(f.conns, conn)
				f.mu.Unlock()
				_ = conn.Close()
			}()
			if err := f.handle(ctx, conn); err != nil && ctx.Err() == nil {
				f.log.Warnf("forward %s -> %s port %d: %v", f.Addr(), f.spec.Service, f.spec.Port, err)
			}
		}()
	}
}

// pick chooses the pod for a new connection among the watched ones.
func (f *Forward) pick() *corev1.Pod {
	var pods []*corev1.Pod
	for _, o := range f.store.List() {
		if p, ok := o.(*corev1.Pod); ok && f.selector.Matches(labels.Set(p.Labels)) {
			pods = append(pods, p)
		}
	}
	return pickPod(pods)
}

// pickPod returns the Ready pod (not being deleted) that became Ready last,
// nil if none is Ready: after a rollout the new pod wins while the old one is
// still Ready.
func pickPod(pods []*corev1.Pod) *corev1.Pod {
	var best *corev1.Pod
	var bestAt time.Time
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		at, ok := readySince(p)
		if !ok {
			continue
		}
		if best == nil || at.After(bestAt) || at.Equal(bestAt) && p.Name > best.Name {
			best, bestAt = p, at
		}
	}
	return best
}

// readySince reports whether the pod is Ready, and since when.
func readySince(p *corev1.Pod) (time.Time, bool) {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.LastTransitionTime.Time, c.Status == corev1.ConditionTrue
		}
	}
	return time.Time{}, false
}

// waitPod returns a Ready pod, waiting up to forwardWait for one.
func (f *Forward) waitPod(ctx context.Context) (*corev1.Pod, error) {
	timer := time.NewTimer(forwardWait)
	defer timer.Stop()
	for {
		f.mu.Lock()
		changed := f.changed
		f.mu.Unlock()
		if p := f.pick(); p != nil {
			return p, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
			return nil, fmt.Errorf("no pod of the service became Ready within %s; the connection is closed (devenv status and devenv logs %s say why)", forwardWait, f.spec.Service)
		}
	}
}

// podPort is the pod's port for spec.Port: the targetPort of the Service's
// port of that number (a name is looked up in the pod's containers), else
// spec.Port itself.
func podPort(svcPorts []corev1.ServicePort, port int, p *corev1.Pod) (int, error) {
	for _, sp := range svcPorts {
		if int(sp.Port) != port || (sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP) {
			continue
		}
		switch {
		case sp.TargetPort.Type == intstr.String && sp.TargetPort.StrVal != "":
			for _, c := range p.Spec.Containers {
				for _, cp := range c.Ports {
					if cp.Name == sp.TargetPort.StrVal {
						return int(cp.ContainerPort), nil
					}
				}
			}
			return 0, fmt.Errorf("pod %s has no container port named %q (the Service's targetPort for port %d)", p.Name, sp.TargetPort.StrVal, port)
		case sp.TargetPort.IntValue() != 0:
			return sp.TargetPort.IntValue(), nil
		}
		return port, nil
	}
	return port, nil
}

// handle forwards one connection to a Ready pod.
func (f *Forward) handle(ctx context.Context, conn net.Conn) error {
	p, err := f.waitPod(ctx)
	if err != nil {
		return err
	}
	port, err := podPort(f.svcPorts, f.spec.Port, p)
	if err != nil {
		return err
	}
	f.mu.Lock()
	if f.target != p.Name {
		f.log.Debugf("forward %s -> %s: connections now go to pod %s port %d", f.Addr(), f.spec.Service, p.Name, port)
		f.target = p.Name
	}
	f.mu.Unlock()
	sc, err := f.dial(ctx, p.Name)
	if err != nil {
		return fmt.Errorf("connecting to pod %s: %w", p.Name, err)
	}
	defer sc.Close()
	return pipe(conn, sc, port)
}

// pipe copies between conn and port of the pod behind sc, as kubectl
// port-forward does: an error stream the kubelet reports on, and a data stream.
func pipe(conn net.Conn, sc httpstream.Connection, port int) error {
	h := http.Header{}
	h.Set(corev1.StreamType, corev1.StreamTypeError)
	h.Set(corev1.PortHeader, strconv.Itoa(port))
	h.Set(corev1.PortForwardRequestIDHeader, "0")
	errStream, err := sc.CreateStream(h)
	if err != nil {
		return fmt.Errorf("creating the error stream: %w", err)
	}
	_ = errStream.Close() // nothing is written to it
	errc := make(chan string, 1)
	go func() {
		msg, err := io.ReadAll(errStream)
		if err != nil && len(msg) == 0 {
			msg = []byte(err.Error())
		}
		errc <- strings.TrimSpace(string(msg))
	}()
	h.Set(corev1.StreamType, corev1.StreamTypeData)
	data, err := sc.CreateStream(h)
	if err != nil {
		return fmt.Errorf("creating the data stream: %w", err)
	}
	remoteDone := make(chan struct{})
	localDone := make(chan struct{})
	go func() {
		_, _ = io.Copy(conn, data)
		close(remoteDone)
	}()
	go func() {
		_, _ = io.Copy(data, conn)
		_ = data.Close() // no more data from us
		close(localDone)
	}()
	select {
	case <-remoteDone:
	case <-localDone:
		// The client closed its side: wait for the rest of the answer.
		select {
		case <-remoteDone:
		case <-sc.CloseChan():
		}
	case <-sc.CloseChan():
	}
	_ = data.Reset()
	select {
	case msg := <-errc:
		if msg != "" && !isClosedMsg(msg) {
			return fmt.Errorf("port %d: %s", port, msg)
		}
	case <-time.After(time.Second):
	}
	return nil
}

func isClosedMsg(msg string) bool {
	return slices.ContainsFunc([]string{"use of closed network connection", "stream reset", "connection reset by peer"},
		func(s string) bool { return strings.Contains(strings.ToLower(msg), s) })
}

// dialPod returns a function that opens a port-forward connection to a pod:
// over WebSocket, falling back to SPDY for API servers without it.
func (c *Cluster) dialPod(namespace string) func(ctx context.Context, pod string) (httpstream.Connection, error) {
	return func(ctx context.Context, pod string) (httpstream.Connection, error) {
		u := c.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("portforward").URL()
		transport, upgrader, err := spdy.RoundTripperFor(c.REST)
		if err != nil {
			return nil, err
		}
		spdyDialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
		ws, err := portforward.NewSPDYOverWebsocketDialer(u, c.REST)
		if err != nil {
			return nil, err
		}
		d := portforward.NewFallbackDialer(ws, spdyDialer, func(err error) bool {
			return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
		})
		type result struct {
			c   httpstream.Connection
			err error
		}
		ch := make(chan result, 1)
		go func() {
			sc, _, err := d.Dial(portforward.PortForwardProtocolV1Name)
			ch <- result{sc, err}
		}()
		select {
		case r := <-ch:
			return r.c, r.err
		case <-ctx.Done():
			go func() {
				if r := <-ch; r.c != nil {
					_ = r.c.Close()
				}
			}()
			return nil, ctx.Err()
		}
	}
}
