package devenv

import (
	"slices"
	"testing"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/watch"
)

func TestChangedPaths(t *testing.T) {
	paths := map[string][]string{"svc": {"src/a.go"}}
	tests := []struct {
		name string
		b    watch.Batch
		s    config.Service
		want []string
	}{
		{"a save", watch.Batch{Services: paths}, config.Service{Name: "svc"}, []string{"src/a.go"}},
		{"an overflow", watch.Batch{Services: map[string][]string{"svc": nil}, Overflow: true}, config.Service{Name: "svc"}, nil},
		{"with the configuration", watch.Batch{Services: paths, Config: true}, config.Service{Name: "svc"}, nil},
		{"a prebuild", watch.Batch{Services: paths}, config.Service{Name: "svc", Prebuild: []string{"make"}}, nil},
		{"watch patterns", watch.Batch{Services: paths}, config.Service{Name: "svc", Watch: []string{"src/**"}}, nil},
		{"another service", watch.Batch{Services: paths}, config.Service{Name: "other"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := changedPaths(tc.b, &tc.s); !slices.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
				t.Errorf("changedPaths = %q, want %q", got, tc.want)
			}
		})
	}
}
