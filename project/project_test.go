package project

import (
	"maps"
	"slices"
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
