package render

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/client-go/kubernetes/scheme"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestExternalGolden renders testdata/devenv.yaml with an override that
// points Kafka and H2 at a broker and a server devenv does not run, and
// compares the objects that wire them in with a golden file (go test -run
// TestExternalGolden ./internal/render -update rewrites them). ExternalIPs
// are given to show that they are not used for an external component.
func TestExternalGolden(t *testing.T) {
	for _, tt := range []struct {
		override string
		want     []string // kind/name of the external objects, in order
	}{
		{"external-ip", []string{"Service/kafka", "EndpointSlice/kafka", "Endpoints/kafka", "Service/h2", "EndpointSlice/h2"}},
		{"external-dns", []string{"Service/kafka", "Service/h2"}},
	} {
		t.Run(tt.override, func(t *testing.T) {
			cfg := load(t, "testdata/devenv.yaml", "testdata/"+tt.override+".yaml")
			objs := render(t, cfg, Options{ExternalIPs: map[string]string{"kafka": "172.18.0.250", "h2": "172.18.0.251"}})
			var ext []*unstructured.Unstructured
			var got []string
			for _, o := range objs {
				if o.GetLabels()["devenv.dev/component"] != "" {
					ext = append(ext, o)
					got = append(got, o.GetKind()+"/"+o.GetName())
				}
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("external objects %v, want %v", got, tt.want)
			}
			out, err := YAML(ext)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.override+".golden.yaml")
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(out) != string(want) {
				t.Errorf("render differs from %s (run with -update if the change is intended):\n%s", golden, out)
			}
			s := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, kjson.SerializerOptions{Strict: true})
			for _, o := range ext {
				data, _ := o.MarshalJSON()
				if _, _, err := s.Decode(data, nil, nil); err != nil {
					t.Errorf("%s %s: strict decode: %v\n%s", o.GetKind(), o.GetName(), err, data)
				}
			}
		})
	}
}

func TestExternalIPPorts(t *testing.T) {
	objs := render(t, load(t, "testdata/devenv.yaml", "testdata/external-ip.yaml"), Options{})
	for _, c := range []struct {
		kind, name string
		path       []string
		want       string
	}{
		{"Service", "kafka", []string{"spec", "ports"}, `[{"port":9092,"protocol":"TCP","targetPort":9093}]`},
		{"EndpointSlice", "kafka", []string{"endpoints"}, `[{"addresses":["172.30.1.90"],"conditions":{"ready":true}}]`},
		{"EndpointSlice", "kafka", []string{"ports"}, `[{"name":"","port":9093,"protocol":"TCP"}]`},
		{"Endpoints", "kafka", []string{"subsets"}, `[{"addresses":[{"ip":"172.30.1.90"}],"ports":[{"port":9093}]}]`},
		{"Service", "h2", []string{"spec", "ports"}, `[{"port":9092,"protocol":"TCP","targetPort":1521}]`},
		{"EndpointSlice", "h2", []string{"endpoints"}, `[{"addresses":["10.0.0.6"],"conditions":{"ready":true}}]`},
	} {
		if got := str(t, find(t, objs, c.kind, c.name), c.path...); got != c.want {
			t.Errorf("%s %s %v = %s, want %s", c.kind, c.name, c.path, got, c.want)
		}
	}
	for _, o := range objs {
		if o.GetAnnotations()["devenv.dev/placeholder"] != "" {
			t.Errorf("%s %s is marked as a placeholder; an external address is known", o.GetKind(), o.GetName())
		}
	}
}

func TestExternalNameService(t *testing.T) {
	cfg := load(t, "testdata/devenv.yaml", "testdata/external-dns.yaml")
	objs := render(t, cfg, Options{})
	k := find(t, objs, "Service", "kafka")
	for path, want := range map[string]string{
		"spec.type":         "ExternalName",
		"spec.externalName": "kafka.example.com",
		"spec.ports":        `[{"port":9094,"protocol":"TCP","targetPort":9094}]`,
	} {
		if got := str(t, k, strings.Split(path, ".")...); got != want {
			t.Errorf("kafka %s = %s, want %s", path, got, want)
		}
	}
	// Pods reach the broker at <service>:<external port>.
	acct := find(t, objs, "ConfigMap", "account")
	if got := str(t, acct, "data", "broker"); got != "kafka:9094" {
		t.Errorf("${kafka.address} = %s, want kafka:9094", got)
	}
	if got := str(t, acct, "data", "datasource.url"); got != "jdbc:h2:tcp://h2:9123/mem:account;DB_CLOSE_DELAY=-1" {
		t.Errorf("${h2.url.account} = %s", got)
	}
}
