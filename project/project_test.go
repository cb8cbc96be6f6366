package project

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestID(t *testing.T) {
	id := ID{Name: "cosmos"}
	if got := id.ContainerName(ComponentKafka); got != "devenv-cosmos-kafka" {
		t.Errorf("ContainerName = %q", got)
	}
	if got := id.Labels(ComponentH2); !maps.Equal(got, map[string]string{"devenv.dev/project": "cosmos", "devenv.dev/component": "h2"}) {
		t.Errorf("Labels = %v", got)
	}
	if got := id.Selector(""); !slices.Equal(got, []string{"devenv.dev/project=cosmos"}) {
		t.Errorf("Selector = %v", got)
	}
}

func TestImageLabel(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		key    string
		want   string
	}{
		{"current", map[string]string{"devenv.dev/recipe": "new"}, LabelRecipe, "new"},
		{"old spelling", map[string]string{"dev.devenv.recipe": "old"}, LabelRecipe, "old"},
		{"both: current wins", map[string]string{"devenv.dev/kafka-broker": "kfake", "dev.devenv.kafka-broker": "x"}, LabelBroker, "kfake"},
		{"old stand-in name", map[string]string{"dev.devenv.standin": "kind-node", "dev.devenv.standin-for": "kindest/node"}, LabelStandInFor, "kindest/node"},
		{"absent", map[string]string{}, LabelStandIn, ""},
		{"nil", nil, LabelBroker, ""},
		{"no legacy spelling", map[string]string{"dev.devenv.spec-hash": "x"}, LabelSpecHash, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ImageLabel(tc.labels, tc.key); got != tc.want {
				t.Errorf("ImageLabel(%v, %s) = %q, want %q", tc.labels, tc.key, got, tc.want)
			}
		})
	}
}

func TestIDKeyOnAnExistingCluster(t *testing.T) {
	own := ID{Name: "cosmos", Namespace: "cosmos"}
	if own.Key() != "cosmos" {
		t.Errorf("on devenv's own cluster the key is the name, got %q", own.Key())
	}
	a := ID{Name: "cosmos", Context: "team", Namespace: "cosmos-ann"}
	b := ID{Name: "cosmos", Context: "team", Namespace: "cosmos-bob"}
	c := ID{Name: "cosmos", Context: "ci", Namespace: "cosmos-ann"}
	keys := map[string]bool{a.Key(): true, b.Key(): true, c.Key(): true, own.Key(): true}
	if len(keys) != 4 {
		t.Errorf("keys collide: %v", keys)
	}
	if a.Key() != (ID{Name: "cosmos", Context: "team", Namespace: "cosmos-ann"}).Key() {
		t.Error("Key is not stable")
	}
	if !strings.HasPrefix(a.Key(), "cosmos-") || len(a.Key()) != len("cosmos-")+8 {
		t.Errorf("Key = %q, want cosmos-<8 hex>", a.Key())
	}
	if got := a.ContainerName(ComponentKafka); got != "devenv-"+a.Key()+"-kafka" {
		t.Errorf("ContainerName = %q", got)
	}
}
