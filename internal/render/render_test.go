package render

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/templates"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func load(t *testing.T, files ...string) *config.Config {
	t.Helper()
	if len(files) == 0 {
		files = []string{"testdata/devenv.yaml"}
	}
	cfg, err := config.Load(files...)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func render(t *testing.T, cfg *config.Config, opts Options) []*unstructured.Unstructured {
	t.Helper()
	if opts.LookupEnv == nil {
		opts.LookupEnv = env(map[string]string{"SHOP_DB_PASSWORD": "hunter2pw"})
	}
	objs, err := Objects(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s among the rendered objects", kind, name)
	return nil
}

func str(t *testing.T, o *unstructured.Unstructured, path ...string) string {
	t.Helper()
	v, ok, err := unstructured.NestedFieldNoCopy(o.Object, path...)
	if err != nil || !ok {
		t.Fatalf("%s %s: no field %v", o.GetKind(), o.GetName(), path)
	}
	b, _ := json.Marshal(v)
	return strings.Trim(string(b), `"`)
}

func TestObjectsOrderAndLabels(t *testing.T) {
	objs := render(t, load(t), Options{ExternalIPs: map[string]string{"kafka": "172.18.0.250", "h2": "172.18.0.251"}})
	var got []string
	for _, o := range objs {
		got = append(got, o.GetKind()+"/"+o.GetName())
		l := o.GetLabels()
		if l[templates.LabelManagedBy] != "devenv" || l[templates.LabelProject] != "shop" || l[templates.LabelPartOf] != "shop" {
			t.Errorf("%s %s: labels %v lack devenv's", o.GetKind(), o.GetName(), l)
		}
		if o.GetKind() != "Namespace" && (l[templates.LabelName] == "" || l[templates.LabelRole] == "") {
			t.Errorf("%s %s: labels %v lack the recommended name and component", o.GetKind(), o.GetName(), l)
		}
		if o.GetKind() != "Namespace" && o.GetNamespace() != "shop" {
			t.Errorf("%s %s: namespace %q", o.GetKind(), o.GetName(), o.GetNamespace())
		}
	}
	want := []string{"Namespace/shop", "ConfigMap/account", "ConfigMap/transfer", "Secret/account",
		"Service/kafka", "EndpointSlice/kafka", "Endpoints/kafka", "Service/h2", "EndpointSlice/h2",
		"Service/account", "Service/transfer", "Deployment/account", "Deployment/transfer"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("order:\n got %v\nwant %v", got, want)
	}
}

// TestRecommendedLabels: app.kubernetes.io/name, part-of and component on a
// service's objects and its pods, never in the Deployment's selector (which
// cannot change); the pods get no service-link variables.
func TestRecommendedLabels(t *testing.T) {
	objs := render(t, load(t), Options{ExternalIPs: map[string]string{"kafka": "172.18.0.250", "h2": "172.18.0.251"}})
	for _, c := range []struct {
		kind, name string
		path       []string
		want       string
	}{
		{"Deployment", "account", []string{"metadata", "labels"}, `{"app":"account","app.kubernetes.io/component":"service","app.kubernetes.io/managed-by":"devenv","app.kubernetes.io/name":"account","app.kubernetes.io/part-of":"shop","devenv.dev/project":"shop"}`},
		{"Deployment", "account", []string{"spec", "selector"}, `{"matchLabels":{"app":"account"}}`},
		{"Deployment", "account", []string{"spec", "template", "metadata", "labels"}, `{"app":"account","app.kubernetes.io/component":"service","app.kubernetes.io/managed-by":"devenv","app.kubernetes.io/name":"account","app.kubernetes.io/part-of":"shop","devenv.dev/project":"shop"}`},
		{"Deployment", "account", []string{"spec", "template", "spec", "enableServiceLinks"}, `false`},
		{"Service", "account", []string{"spec", "selector"}, `{"app":"account"}`},
		{"ConfigMap", "account", []string{"metadata", "labels", "app.kubernetes.io/name"}, `"account"`},
		{"Service", "kafka", []string{"metadata", "labels"}, `{"app.kubernetes.io/component":"broker","app.kubernetes.io/managed-by":"devenv","app.kubernetes.io/name":"kafka","app.kubernetes.io/part-of":"shop","devenv.dev/component":"kafka","devenv.dev/project":"shop"}`},
		{"EndpointSlice", "h2", []string{"metadata", "labels", "app.kubernetes.io/component"}, `"database"`},
		{"Namespace", "shop", []string{"metadata", "labels"}, `{"app.kubernetes.io/managed-by":"devenv","app.kubernetes.io/part-of":"shop","devenv.dev/project":"shop"}`},
	} {
		o := find(t, objs, c.kind, c.name)
		var v any = o.Object
		for _, p := range c.path {
			m, _ := v.(map[string]any)
			v = m[p]
		}
		b, _ := json.Marshal(v)
		if string(b) != c.want {
			t.Errorf("%s %s %s = %s, want %s", c.kind, c.name, c.path, b, c.want)
		}
	}
}

// TestObjectsDecodeStrictly decodes every object through client-go's scheme
// with unknown fields refused, so a template typo cannot slip through.
func TestObjectsDecodeStrictly(t *testing.T) {
	objs := render(t, load(t), Options{ShowSecrets: true})
	s := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, kjson.SerializerOptions{Strict: true})
	for _, o := range objs {
		data, err := o.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Decode(data, nil, nil); err != nil {
			t.Errorf("%s %s: strict decode: %v\n%s", o.GetKind(), o.GetName(), err, data)
		}
	}
}

func TestConfigMapAndReferences(t *testing.T) {
	objs := render(t, load(t), Options{})
	cm := find(t, objs, "ConfigMap", "account")
	for k, want := range map[string]string{
		"spring.profile": "kubernetes",
		"datasource.url": "jdbc:h2:tcp://h2:9092/mem:account;DB_CLOSE_DELAY=-1",
		"broker":         "kafka:9092",
		"literal":        "${not.a.ref}",
	} {
		if got := str(t, cm, "data", k); got != want {
			t.Errorf("data[%s] = %q, want %q", k, got, want)
		}
	}
	tr := find(t, objs, "ConfigMap", "transfer")
	if got := str(t, tr, "data", "ACCOUNT_URL"); got != "http://account:8080" {
		t.Errorf("ACCOUNT_URL = %q", got)
	}
	if got := str(t, tr, "data", "ns"); got != "shop" {
		t.Errorf("ns = %q", got)
	}
}

func TestSecretsMaskedByDefault(t *testing.T) {
	cfg := load(t)
	objs := render(t, cfg, Options{})
	out, err := YAML(objs)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2pw", "usrnm", "aHVudGVyMnB3", "dXNybm0="} {
		if strings.Contains(string(out), secret) {
			t.Errorf("masked output contains %q", secret)
		}
	}
	sec := find(t, objs, "Secret", "account")
	if got := str(t, sec, "data", "datasource.password"); got != MaskedValue {
		t.Errorf("masked value = %q", got)
	}
	if sec.GetAnnotations()[templates.AnnotationDefaultSecrets] != "datasource.username" {
		t.Errorf("default-secrets annotation = %v", sec.GetAnnotations())
	}
	if sec.GetAnnotations()[templates.AnnotationMaskedSecrets] == "" {
		t.Error("no masked annotation")
	}

	shown := render(t, cfg, Options{ShowSecrets: true})
	sec = find(t, shown, "Secret", "account")
	if got := str(t, sec, "data", "datasource.password"); got != "aHVudGVyMnB3" {
		t.Errorf("shown password = %q, want base64 of hunter2pw", got)
	}
	if got := str(t, sec, "data", "datasource.username"); got != "dXNybm0=" {
		t.Errorf("shown username = %q, want base64 of usrnm", got)
	}
	// The pods' config hash is the same whether or not the output shows secrets.
	a := str(t, find(t, objs, "Deployment", "account"), "spec", "template", "metadata", "annotations", templates.AnnotationConfigHash)
	b := str(t, find(t, shown, "Deployment", "account"), "spec", "template", "metadata", "annotations", templates.AnnotationConfigHash)
	if a != b || len(a) != 16 {
		t.Errorf("config hash masked %q vs shown %q", a, b)
	}
}

func TestConfigHashFollowsSecrets(t *testing.T) {
	cfg := load(t)
	hash := func(pw string) string {
		objs := render(t, cfg, Options{LookupEnv: env(map[string]string{"SHOP_DB_PASSWORD": pw})})
		return str(t, find(t, objs, "Deployment", "account"), "spec", "template", "metadata", "annotations", templates.AnnotationConfigHash)
	}
	if hash("one") == hash("two") {
		t.Error("config hash did not change with the secret")
	}
	if first, again := hash("one"), hash("one"); first != again {
		t.Error("config hash is not stable")
	}
}

func TestMissingSecret(t *testing.T) {
	_, err := Objects(load(t), Options{LookupEnv: env(nil)})
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "testdata/devenv.yaml:18: services.account.secrets.datasource.password: environment variable SHOP_DB_PASSWORD is not set") {
		t.Errorf("err = %v", err)
	}
}

func TestDeployment(t *testing.T) {
	objs := render(t, load(t), Options{Images: map[string]string{"account": "devenv.local/shop-account:abc"}})
	d := find(t, objs, "Deployment", "account")
	c := d.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	if c["image"] != "devenv.local/shop-account:abc" || c["imagePullPolicy"] != "IfNotPresent" {
		t.Errorf("image = %v %v", c["image"], c["imagePullPolicy"])
	}
	envJSON, _ := json.Marshal(c["env"])
	for _, want := range []string{
		`{"name":"JAVA_OPTS","value":"-Xmx256m"}`,
		`{"name":"SPRING_PROFILE","valueFrom":{"configMapKeyRef":{"key":"spring.profile","name":"account"}}}`,
		`{"name":"DATASOURCE_PASSWORD","valueFrom":{"secretKeyRef":{"key":"datasource.password","name":"account"}}}`,
	} {
		if !strings.Contains(string(envJSON), want) {
			t.Errorf("env %s\nlacks %s", envJSON, want)
		}
	}
	probe, _ := json.Marshal(c["readinessProbe"])
	if string(probe) != `{"httpGet":{"path":"/health","port":"http"},"periodSeconds":1}` {
		t.Errorf("probe = %s", probe)
	}
	res, _ := json.Marshal(c["resources"])
	if string(res) != `{"limits":{"memory":"256Mi"},"requests":{"cpu":"500m","memory":"256Mi"}}` {
		t.Errorf("resources = %s", res)
	}
	if got := str(t, d, "spec", "template", "spec", "terminationGracePeriodSeconds"); got != "2" {
		t.Errorf("grace = %s", got)
	}
	if got := str(t, d, "spec", "replicas"); got != "2" {
		t.Errorf("replicas = %s", got)
	}
	tr := find(t, objs, "Deployment", "transfer")
	tc, _ := json.Marshal(tr.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["readinessProbe"])
	if string(tc) != `{"periodSeconds":1,"tcpSocket":{"port":"http"}}` {
		t.Errorf("transfer probe = %s", tc)
	}
	if got := str(t, tr, "spec", "template", "spec", "containers"); !strings.Contains(got, DefaultImage("shop", "transfer")) {
		t.Errorf("default image missing: %s", got)
	}
}

// TestPlaceholderAcceptedInEndpoints checks PlaceholderIP against the rules
// the API server applies to endpoint addresses (ValidateNonSpecialIP in
// Kubernetes' core validation: not unspecified, loopback or link-local), and
// that it is from TEST-NET-1, which no network routes.
func TestPlaceholderAcceptedInEndpoints(t *testing.T) {
	a, err := netip.ParseAddr(PlaceholderIP)
	if err != nil || !a.Is4() {
		t.Fatalf("PlaceholderIP %q is not an IPv4 address: %v", PlaceholderIP, err)
	}
	if a.IsUnspecified() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.IsMulticast() {
		t.Errorf("PlaceholderIP %s is refused in endpoints by the API server", a)
	}
	if !netip.MustParsePrefix("192.0.2.0/24").Contains(a) {
		t.Errorf("PlaceholderIP %s is not from TEST-NET-1 (192.0.2.0/24)", a)
	}
}

func TestExternalPlaceholder(t *testing.T) {
	objs := render(t, load(t), Options{ExternalIPs: map[string]string{"kafka": "172.18.0.250"}})
	if got := str(t, find(t, objs, "EndpointSlice", "kafka"), "endpoints"); !strings.Contains(got, "172.18.0.250") {
		t.Errorf("kafka slice endpoints = %s", got)
	}
	h2 := find(t, objs, "EndpointSlice", "h2")
	if h2.GetAnnotations()[templates.AnnotationPlaceholder] != "true" || !strings.Contains(str(t, h2, "endpoints"), PlaceholderIP) {
		t.Errorf("h2 slice without address: %v %s", h2.GetAnnotations(), str(t, h2, "endpoints"))
	}
	if h2.GetLabels()["kubernetes.io/service-name"] != "h2" {
		t.Errorf("slice labels = %v", h2.GetLabels())
	}
	if find(t, objs, "EndpointSlice", "kafka").GetAnnotations()[templates.AnnotationPlaceholder] != "" {
		t.Error("kafka slice marked placeholder")
	}
	if _, err := Objects(load(t), Options{LookupEnv: env(map[string]string{"SHOP_DB_PASSWORD": "x"}), ExternalIPs: map[string]string{"kafka": "nope"}}); err == nil {
		t.Error("want an error for a bad IP")
	}
}

func TestReferenceErrors(t *testing.T) {
	tests := []struct{ config, want string }{
		{`broker: "${kafka.adress}"`, `:8: services.a.config.broker: unknown reference ${kafka.adress}; did you mean ${kafka.address}?`},
		{`broker: "${kafka.host_address}"`, `:8: services.a.config.broker: ${kafka.host_address} is the broker's address on your machine`},
		{`url: "${services.b.address}"`, `there is no enabled service "b"`},
		{"x.y: 1\n      x-y: 2", `:8: services.a.config.x.y: becomes environment variable X_Y, which services.a.config.x-y already sets`},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		_ = os.MkdirAll(filepath.Join(dir, "a"), 0o755)
		_ = os.WriteFile(filepath.Join(dir, "a", "Dockerfile"), []byte("FROM scratch\n"), 0o644)
		f := filepath.Join(dir, "devenv.yaml")
		_ = os.WriteFile(f, []byte("name: x\nkafka: {}\nservices:\n  a:\n    port: 1\n    # config\n    config:\n      "+tt.config+"\n"), 0o644)
		_, err := Objects(load(t, f), Options{})
		if err == nil || !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("config %q: err = %v\nwant %q", tt.config, err, tt.want)
		}
	}
}

func TestTemplateOverride(t *testing.T) {
	set, err := templates.New("testdata/mytemplates")
	if err != nil {
		t.Fatal(err)
	}
	objs := render(t, load(t), Options{Templates: set})
	ns := find(t, objs, "Namespace", "shop")
	if ns.GetLabels()["custom"] != "yes" || ns.GetLabels()[templates.LabelProject] != "shop" {
		t.Errorf("namespace labels = %v, want the override's plus devenv's", ns.GetLabels())
	}
}

func TestYAMLStream(t *testing.T) {
	objs := render(t, load(t), Options{})
	out, err := YAML(objs)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(out), "\n---\n"); n != len(objs)-1 {
		t.Errorf("%d separators for %d objects", n, len(objs))
	}
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{"spring.profile": "SPRING_PROFILE", "datasource.driver.class.name": "DATASOURCE_DRIVER_CLASS_NAME", "ACCOUNT_URL": "ACCOUNT_URL", "a-b": "A_B", "9x": "_9X"} {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}
