package images

import (
	"context"
	"testing"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/images/standin"
	"github.com/devenv-tool/devenv/internal/log"
)

func TestIntegrationNeeded(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker")
	}
	ctx := context.Background()
	cli, err := dockerx.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	cat := []standin.StandIn{
		{Name: "node", Ref: "devenv.local/test-node:1", For: "example.invalid/node"},
		{Name: "own", Ref: "devenv.local/test-own:1"},
	}
	r := &Resolver{Docker: cli, Log: log.Nop(), StandIns: cat}
	// example.invalid cannot be pulled anywhere; scratch-like refs with no
	// stand-in are left out; a stand-in's own reference needs it.
	got, err := r.Needed(ctx, []string{"example.invalid/node:v1", "example.invalid/other:v1", "devenv.local/test-own:1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "node" || got[1] != "own" {
		t.Errorf("Needed = %q, want [node own]", got)
	}
}
