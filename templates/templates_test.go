package templates

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func sample(name string) any {
	m := Meta{Name: "account", Namespace: "cosmos", Labels: map[string]string{LabelProject: "cosmos"}, Annotations: map[string]string{}}
	switch name {
	case Namespace:
		return NamespaceData{Meta: m}
	case ConfigMap:
		return ConfigMapData{Meta: m, Data: map[string]string{"a": `quote " and: colon`}}
	case Secret:
		return SecretData{Meta: m, Data: map[string]string{"a": "eA=="}}
	case Service:
		return ServiceData{Meta: m, Selector: map[string]string{"app": "account"}, Port: 8080}
	case ExternalService, EndpointSlice, Endpoints:
		return ExternalData{Meta: m, Service: "account", IP: "172.18.0.2", Port: 9092, TargetPort: 9092}
	case ExternalName:
		return ExternalNameData{Meta: m, Host: "kafka.example.com", Port: 9092}
	case Deployment:
		return DeploymentData{Meta: m, Selector: map[string]string{"app": "account"}, PodLabels: map[string]string{"app": "account"},
			PodAnnotations: map[string]string{}, Replicas: 1, Image: "x:1", Port: 8080,
			Env: []EnvVar{{Name: "A", Value: "1"}, {Name: "B", ConfigMap: "account", Key: "b"}, {Name: "C", Secret: "account", Key: "c"}}}
	}
	return nil
}

func TestBuiltinsRenderValidYAML(t *testing.T) {
	names := Names()
	if len(names) != 9 {
		t.Fatalf("built-in templates = %v, want 9", names)
	}
	for _, name := range names {
		out, err := Render(name, sample(name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var obj map[string]any
		if err := yaml.Unmarshal(out, &obj); err != nil {
			t.Fatalf("%s: invalid YAML: %v\n%s", name, err, out)
		}
		md, _ := obj["metadata"].(map[string]any)
		if md["name"] != "account" && md["name"] != nil {
			t.Errorf("%s: name = %v", name, md["name"])
		}
		if obj["kind"] == nil || obj["apiVersion"] == nil {
			t.Errorf("%s: no kind/apiVersion:\n%s", name, out)
		}
	}
	out, _ := Render(ConfigMap, sample(ConfigMap))
	var cm struct{ Data map[string]string }
	_ = yaml.Unmarshal(out, &cm)
	if cm.Data["a"] != `quote " and: colon` {
		t.Errorf("value not quoted safely: %q", cm.Data["a"])
	}
}

func TestOverride(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "service.yaml.tmpl"), []byte("kind: Mine\nname: {{ .Name }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Render(Service, sample(Service))
	if err != nil || string(out) != "kind: Mine\nname: account\n" {
		t.Errorf("override output %q, %v", out, err)
	}
	if out, _ := s.Render(Namespace, sample(Namespace)); !strings.Contains(string(out), "kind: Namespace") {
		t.Errorf("non-overridden template changed: %s", out)
	}

	if err := os.WriteFile(filepath.Join(dir, "servise.yaml.tmpl"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(dir); err == nil || !strings.Contains(err.Error(), `no built-in template is called "servise"`) {
		t.Errorf("err = %v", err)
	}
}

func TestMissingFieldIsAnError(t *testing.T) {
	if _, err := Render(Service, struct{ Name string }{"x"}); err == nil {
		t.Error("want an error for data without the template's fields")
	}
}
