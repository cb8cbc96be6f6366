package devenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/log"
)

func TestWatchPatterns(t *testing.T) {
	for _, tc := range []struct {
		name string
		svc  config.Service
		want []string
	}{
		{"prebuild, no watch list: the whole folder, .dockerignore aside", config.Service{Prebuild: []string{"./build.sh"}}, []string{"**"}},
		{"prebuild with a watch list: the list", config.Service{Prebuild: []string{"make"}, Watch: []string{"src/**"}}, []string{"src/**"}},
		{"no prebuild: the Docker context rules", config.Service{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := watchPatterns(&tc.svc); !slices.Equal(got, tc.want) {
				t.Errorf("watchPatterns = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPlacementKeepsHostPort(t *testing.T) {
	e := &Env{}
	// Found: the running container's port is kept.
	if _, p := e.placement(nil, true, "", "127.0.0.1:40123", 0); p != 40123 {
		t.Errorf("kept port = %d, want 40123", p)
	}
	// Configured: the config's port wins.
	if _, p := e.placement(nil, true, "", "127.0.0.1:40123", 39000); p != 39000 {
		t.Errorf("configured port = %d, want 39000", p)
	}
	// New: a concrete free port, so the spec is the same on the next up.
	if _, p := e.placement(nil, false, "", "", 0); p == 0 {
		t.Error("a new container got port 0; want a concrete free port")
	}
}

func TestPortFree(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if portFree(port) {
		t.Errorf("port %d is listened on, yet reported free", port)
	}
	l.Close()
	if !portFree(port) {
		t.Errorf("port %d was closed, yet reported in use", port)
	}
}

func TestProgressStoppedIsNotFailed(t *testing.T) {
	var out bytes.Buffer
	p := &progress{log: log.New(&out, false)}
	p.start("applying %d objects", 3)(fmt.Errorf("apply: %w", context.Canceled), "")
	p.start("loading")(errors.New("no space left"), "")
	got := out.String()
	if !strings.Contains(got, "• applying 3 objects: stopped") || strings.Contains(got, "✗ applying") {
		t.Errorf("a cancelled step printed %q, want it reported as stopped", got)
	}
	if !strings.Contains(got, "✗ loading") {
		t.Errorf("a failed step printed %q, want ✗", got)
	}
}
