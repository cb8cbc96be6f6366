package cluster

import (
	"context"
	"errors"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/devenv-tool/devenv/internal/log"
)

func TestPing(t *testing.T) {
	c := &Cluster{Client: fake.NewClientset(), log: log.Nop()}
	if err := c.Ping(context.Background()); err != nil {
		t.Errorf("Ping = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Ping(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Ping with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestDeploymentStatus(t *testing.T) {
	dep := func(replicas *int32, generation, observed int64, ready, updated int32, images ...string) *appsv1.Deployment {
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", Generation: generation},
			Spec:       appsv1.DeploymentSpec{Replicas: replicas},
			Status:     appsv1.DeploymentStatus{ObservedGeneration: observed, ReadyReplicas: ready, UpdatedReplicas: updated},
		}
		for _, img := range images {
			d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{Name: img, Image: img})
		}
		return d
	}
	two := int32(2)
	tests := []struct {
		name      string
		objects   []runtime.Object
		want      DeploymentStatus
		wantFound bool
	}{
		{"missing", nil, DeploymentStatus{}, false},
		{"ready", []runtime.Object{dep(&two, 3, 3, 2, 2, "web:1", "sidecar:1")},
			DeploymentStatus{Image: "web:1", Desired: 2, ReadyPods: 2, Ready: true}, true},
		{"one pod not ready", []runtime.Object{dep(&two, 3, 3, 1, 2, "web:1")},
			DeploymentStatus{Image: "web:1", Desired: 2, ReadyPods: 1}, true},
		{"not all updated", []runtime.Object{dep(&two, 3, 3, 2, 1, "web:1")},
			DeploymentStatus{Image: "web:1", Desired: 2, ReadyPods: 2}, true},
		{"generation not observed", []runtime.Object{dep(&two, 4, 3, 2, 2, "web:1")},
			DeploymentStatus{Image: "web:1", Desired: 2, ReadyPods: 2}, true},
		{"no replicas, no containers", []runtime.Object{dep(nil, 1, 1, 0, 0)},
			DeploymentStatus{Ready: true}, true},
		{"other namespace", []runtime.Object{func() *appsv1.Deployment { d := dep(&two, 1, 1, 2, 2); d.Namespace = "other"; return d }()},
			DeploymentStatus{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Cluster{Client: fake.NewClientset(tt.objects...), log: log.Nop()}
			got, found, err := c.DeploymentStatus(context.Background(), "ns", "web")
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || found != tt.wantFound {
				t.Errorf("DeploymentStatus = %+v, found %v; want %+v, found %v", got, found, tt.want, tt.wantFound)
			}
		})
	}
}

func TestDeploymentStatusError(t *testing.T) {
	cs := fake.NewClientset()
	cs.PrependReactor("get", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	c := &Cluster{Client: cs, log: log.Nop()}
	if _, found, err := c.DeploymentStatus(context.Background(), "ns", "web"); err == nil || found {
		t.Errorf("DeploymentStatus = found %v, %v; want an error", found, err)
	}
}

func TestEndpointAddresses(t *testing.T) {
	port := func(p int32) discoveryv1.EndpointPort { return discoveryv1.EndpointPort{Port: &p} }
	slice := func(name, ns, svc string, ports []discoveryv1.EndpointPort, addrs ...[]string) *discoveryv1.EndpointSlice {
		s := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       ports,
		}
		for _, a := range addrs {
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: a})
		}
		return s
	}
	tests := []struct {
		name    string
		objects []runtime.Object
		want    []string
	}{
		{"no slices", nil, nil},
		{"one address", []runtime.Object{slice("kafka-1", "ns", "kafka", []discoveryv1.EndpointPort{port(9092)}, []string{"172.18.0.250"})},
			[]string{"172.18.0.250:9092"}},
		{"every address and port", []runtime.Object{slice("kafka-1", "ns", "kafka",
			[]discoveryv1.EndpointPort{port(9092), {}, port(9093)}, []string{"172.18.0.2", "172.18.0.3"}, []string{"172.18.0.4"})},
			[]string{"172.18.0.2:9092", "172.18.0.2:9093", "172.18.0.3:9092", "172.18.0.3:9093", "172.18.0.4:9092", "172.18.0.4:9093"}},
		{"other services and namespaces ignored", []runtime.Object{
			slice("kafka-1", "ns", "kafka", []discoveryv1.EndpointPort{port(9092)}, []string{"172.18.0.250"}),
			slice("h2-1", "ns", "h2", []discoveryv1.EndpointPort{port(9092)}, []string{"172.18.0.251"}),
			slice("kafka-1", "other", "kafka", []discoveryv1.EndpointPort{port(9092)}, []string{"172.18.0.252"}),
		}, []string{"172.18.0.250:9092"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Cluster{Client: fake.NewClientset(tt.objects...), log: log.Nop()}
			got, err := c.EndpointAddresses(context.Background(), "ns", "kafka")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("EndpointAddresses = %v, want %v", got, tt.want)
			}
		})
	}
}
