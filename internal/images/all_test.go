package images

import (
	"context"
	"strings"
	"testing"

	"github.com/devenv-tool/devenv/internal/images/standin"
)

func TestAllInDependencyOrder(t *testing.T) {
	seen := map[string]bool{}
	var names []string
	for _, s := range All() {
		if seen[s.Name] {
			t.Errorf("stand-in %s listed twice", s.Name)
		}
		for _, n := range s.Needs {
			if !seen[n] {
				t.Errorf("%s needs %s, which is not listed before it", s.Name, n)
			}
		}
		if !strings.HasPrefix(s.Ref, standin.Registry+"/") {
			t.Errorf("%s is tagged %s, outside %s", s.Name, s.Ref, standin.Registry)
		}
		seen[s.Name] = true
		names = append(names, s.Name)
	}
	if got := strings.Join(names, ","); got != "debian-base,kind-node,kafka,jre,h2,registry" {
		t.Errorf("All() = %s", got)
	}
	if _, err := recipeHashes(All()); err != nil {
		t.Fatal(err)
	}
}

func fakeCatalogue(recipes map[string]string) []standin.StandIn {
	mk := func(name string, needs ...string) standin.StandIn {
		return standin.StandIn{
			Name: name, Ref: standin.Registry + "/" + name + ":1", Needs: needs,
			Recipe: func() ([]string, error) { return []string{recipes[name]}, nil },
			Build:  func(context.Context, *standin.Env, map[string]string) error { return nil },
		}
	}
	return []standin.StandIn{mk("base"), mk("mid", "base"), mk("top", "mid"), mk("other")}
}

func TestRecipeHashesCoverNeeds(t *testing.T) {
	recipes := map[string]string{"base": "b1", "mid": "m1", "top": "t1", "other": "o1"}
	h1, err := recipeHashes(fakeCatalogue(recipes))
	if err != nil {
		t.Fatal(err)
	}
	recipes["base"] = "b2"
	h2, err := recipeHashes(fakeCatalogue(recipes))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"base", "mid", "top"} {
		if h1[n] == h2[n] {
			t.Errorf("changing base's recipe kept %s's hash", n)
		}
	}
	if h1["other"] != h2["other"] {
		t.Error("changing base's recipe changed an unrelated stand-in")
	}
	bad := fakeCatalogue(recipes)
	bad[0], bad[1] = bad[1], bad[0]
	if _, err := recipeHashes(bad); err == nil || !strings.Contains(err.Error(), `mid needs "base", which is not listed before it`) {
		t.Errorf("out-of-order catalogue: %v", err)
	}
}

func TestSelectWithNeeds(t *testing.T) {
	cat := fakeCatalogue(nil)
	got, err := selectWithNeeds(cat, []string{"top"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "base,mid,top" {
		t.Errorf("selected %v", names)
	}
	if _, err := selectWithNeeds(cat, []string{"nope"}); err == nil || !strings.Contains(err.Error(), `unknown stand-in "nope": choose from base, mid, top, other`) {
		t.Errorf("unknown name: %v", err)
	}
}

func TestStandsInFor(t *testing.T) {
	kind := standin.StandIn{Name: "kind-node", For: "kindest/node"}
	for ref, want := range map[string]bool{
		"kindest/node:v1.37.0":           true,
		"docker.io/kindest/node:v1.31.0": true,
		"kindest/node@sha256:abc":        true,
		"kindest/nodes:v1":               false,
		"busybox":                        false,
	} {
		if got := standsInFor(kind, ref); got != want {
			t.Errorf("standsInFor(kind, %q) = %v", ref, got)
		}
	}
	if standsInFor(standin.StandIn{Name: "h2"}, "h2:1") {
		t.Error("a stand-in for nothing matched")
	}
}
