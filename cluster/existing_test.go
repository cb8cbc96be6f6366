package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/devenv-tool/devenv/internal/log"
)

func TestConnectExistingNamesTheContexts(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "config")
	const file = `apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
contexts:
- name: team
  context: {cluster: a, user: u}
- name: ci
  context: {cluster: a, user: u}
`
	if err := os.WriteFile(kc, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ConnectExisting(context.Background(), "tem", kc, Options{})
	if !errors.Is(err, ErrNoCluster) {
		t.Fatalf("err = %v, want ErrNoCluster", err)
	}
	for _, want := range []string{kc, `"tem"`, "ci, team", "cluster.context"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestCheckAccess(t *testing.T) {
	for _, tc := range []struct {
		name       string
		nsExists   bool
		deny       map[string]bool // Access.String() denied
		wantErr    bool
		wantDenied []string
	}{
		{name: "all allowed", nsExists: true},
		{name: "namespace missing, may create", nsExists: false},
		{name: "exec denied", nsExists: true, deny: map[string]bool{"create pods/exec": true, "patch secrets": true},
			wantErr: true, wantDenied: []string{"patch secrets", "create pods/exec"}},
		{name: "may not create the namespace", nsExists: false, deny: map[string]bool{"create namespaces": true},
			wantErr: true, wantDenied: []string{"create namespaces"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var objs []runtime.Object
			if tc.nsExists {
				objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-ann"}})
			}
			cs := fake.NewClientset(objs...)
			asked := map[string]string{}
			cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
				r := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview)
				ra := r.Spec.ResourceAttributes
				s := Access{Verb: ra.Verb, Group: ra.Group, Resource: ra.Resource, Subresource: ra.Subresource}.String()
				asked[s] = ra.Namespace
				r.Status.Allowed = !tc.deny[s]
				return true, r, nil
			})
			c := &Cluster{Context: "team", Client: cs, log: log.Nop()}
			err := c.CheckAccess(context.Background(), "team-ann", ProjectAccess)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			for _, d := range tc.wantDenied {
				if !strings.Contains(err.Error(), d) {
					t.Errorf("error %q does not name %q", err, d)
				}
			}
			if ns, ok := asked["create namespaces"]; ok == tc.nsExists || ns != "" {
				t.Errorf("create namespaces asked=%v (namespace %q) with the namespace existing=%v", ok, ns, tc.nsExists)
			}
			if asked["create pods/exec"] != "team-ann" {
				t.Errorf("pods/exec asked in namespace %q", asked["create pods/exec"])
			}
		})
	}
}
