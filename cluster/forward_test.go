package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/devenv-tool/devenv/internal/log"
)

func fwdPod(name string, ready bool, readyAt time.Time) *corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "echo"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "echo", Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8081}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: st, LastTransitionTime: metav1.NewTime(readyAt)},
		}},
	}
}

func TestPickPod(t *testing.T) {
	t0 := time.Now().Truncate(time.Second)
	deleting := fwdPod("deleting", true, t0.Add(5*time.Second))
	deleting.DeletionTimestamp = &metav1.Time{Time: t0}
	pending := fwdPod("pending", true, t0.Add(5*time.Second))
	pending.Status.Phase = corev1.PodPending
	for _, tc := range []struct {
		name string
		pods []*corev1.Pod
		want string
	}{
		{"none", nil, ""},
		{"not ready", []*corev1.Pod{fwdPod("a", false, t0)}, ""},
		{"one ready", []*corev1.Pod{fwdPod("a", false, t0), fwdPod("b", true, t0)}, "b"},
		{"newest ready wins (rollout)", []*corev1.Pod{fwdPod("old", true, t0), fwdPod("new", true, t0.Add(time.Second))}, "new"},
		{"deleting and pending pods never", []*corev1.Pod{fwdPod("old", true, t0), deleting, pending}, "old"},
		{"same time: by name", []*corev1.Pod{fwdPod("b", true, t0), fwdPod("a", true, t0)}, "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if p := pickPod(tc.pods); p != nil {
				got = p.Name
			}
			if got != tc.want {
				t.Errorf("pickPod = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPodPort(t *testing.T) {
	p := fwdPod("a", true, time.Now())
	for _, tc := range []struct {
		name    string
		ports   []corev1.ServicePort
		port    int
		want    int
		wantErr string
	}{
		{"service port to numeric targetPort", []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}, 80, 8080, ""},
		{"named targetPort", []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("web")}}, 80, 8081, ""},
		{"unknown name", []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("nope")}}, 80, 0, `no container port named "nope"`},
		{"no targetPort", []corev1.ServicePort{{Port: 80}}, 80, 80, ""},
		{"not a service port: the pod's", []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}, 9090, 9090, ""},
		{"UDP port skipped", []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)}}, 80, 80, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := podPort(tc.ports, tc.port, p)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("podPort = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

// fakePodConn is a port-forward connection to a pod that answers every data
// stream with "pod NAME port PORT".
type fakePodConn struct {
	pod    string
	closed chan bool
}

func (c *fakePodConn) CreateStream(h http.Header) (httpstream.Stream, error) {
	local, remote := net.Pipe()
	if h.Get(corev1.StreamType) == corev1.StreamTypeData {
		go func() {
			fmt.Fprintf(remote, "pod %s port %s\n", c.pod, h.Get(corev1.PortHeader))
			remote.Close()
		}()
	} else {
		remote.Close()
	}
	return fakeStream{local, h}, nil
}
func (c *fakePodConn) Close() error                       { return nil }
func (c *fakePodConn) CloseChan() <-chan bool             { return c.closed }
func (c *fakePodConn) SetIdleTimeout(time.Duration)       {}
func (c *fakePodConn) RemoveStreams(...httpstream.Stream) {}

type fakeStream struct {
	net.Conn
	h http.Header
}

func (s fakeStream) Reset() error         { return s.Conn.Close() }
func (s fakeStream) Headers() http.Header { return s.h }
func (s fakeStream) Identifier() uint32   { return 0 }

func fakeDial(_ context.Context, pod string) (httpstream.Connection, error) {
	return &fakePodConn{pod: pod, closed: make(chan bool)}, nil
}

func echoService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "ns"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "echo"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
}

func ask(t *testing.T, addr string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading through the forward: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// waitTarget waits until the forward targets pod, up to a second after the
// change: the pods are watched, not polled.
func waitTarget(t *testing.T, f *Forward, pod string) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for f.Target() != pod {
		if time.Now().After(deadline) {
			t.Fatalf("target = %q a second after the change, want %q", f.Target(), pod)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestForwardFollowsPods(t *testing.T) {
	ctx := context.Background()
	t0 := time.Now().Add(-time.Minute)
	client := fake.NewClientset(echoService(), fwdPod("v1", false, t0))
	c := &Cluster{Client: client, log: log.Nop()}
	f, err := c.forward(ctx, ForwardSpec{Namespace: "ns", Service: "echo", Port: 80}, fakeDial)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !strings.HasPrefix(f.Addr(), "127.0.0.1:") || f.HostPort() == 0 || f.Addr() != "127.0.0.1:"+strconv.Itoa(f.HostPort()) {
		t.Fatalf("addr %s host port %d", f.Addr(), f.HostPort())
	}
	if f.Target() != "" {
		t.Fatalf("target %q with no Ready pod", f.Target())
	}

	// A connection made while no pod is Ready waits for one.
	answer := make(chan string, 1)
	go func() { answer <- ask(t, f.Addr()) }()
	time.Sleep(100 * time.Millisecond)
	pods := client.CoreV1().Pods("ns")
	if _, err := pods.Update(ctx, fwdPod("v1", true, t0), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-answer:
		if got != "pod v1 port 8080" {
			t.Errorf("answer %q, want pod v1 on the targetPort 8080", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting connection got no answer after the pod became Ready")
	}

	// A rollout: the new pod becomes Ready while the old one still is.
	if _, err := pods.Create(ctx, fwdPod("v2", true, time.Now()), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitTarget(t, f, "v2")
	if got := ask(t, f.Addr()); got != "pod v2 port 8080" {
		t.Errorf("after the rollout: %q, want pod v2", got)
	}
	// The new pod restarts (an image swap): not Ready, then Ready again.
	if _, err := pods.Update(ctx, fwdPod("v2", false, time.Now()), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitTarget(t, f, "v1")
	if _, err := pods.Update(ctx, fwdPod("v2", true, time.Now()), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitTarget(t, f, "v2")
	if err := pods.Delete(ctx, "v2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitTarget(t, f, "v1")

	if err := f.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if conn, err := net.DialTimeout("tcp", f.Addr(), time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still listens after Close", f.Addr())
	}
}

func TestForwardErrors(t *testing.T) {
	ctx := context.Background()
	noSelector := echoService()
	noSelector.Name, noSelector.Spec.Selector = "kafka", nil
	c := &Cluster{Client: fake.NewClientset(echoService(), noSelector), log: log.Nop()}

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	_, err = c.forward(ctx, ForwardSpec{Namespace: "ns", Service: "echo", Port: 80, HostPort: port}, fakeDial)
	if !errors.Is(err, ErrPortTaken) || !strings.Contains(err.Error(), "127.0.0.1:"+strconv.Itoa(port)) || !strings.Contains(err.Error(), "service echo") {
		t.Errorf("taken port: err = %v, want ErrPortTaken naming the port and the service", err)
	}
	t.Logf("taken port: %v", err)

	for _, tc := range []struct {
		spec ForwardSpec
		want string
	}{
		{ForwardSpec{Namespace: "ns", Service: "absent", Port: 80}, "the Service does not exist"},
		{ForwardSpec{Namespace: "ns", Service: "kafka", Port: 80}, "no selector"},
		{ForwardSpec{Namespace: "ns", Service: "echo", Port: 0}, "out of range"},
	} {
		if _, err := c.forward(ctx, tc.spec, fakeDial); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.spec, err, tc.want)
		}
	}
}
