package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/devenv-tool/devenv/cluster"
)

// A program creates (or reuses) a kind cluster with a logger of its own. It
// allows the docker shim first, which changes the process's PATH only on a
// Docker engine that refuses --privileged.
func Example() {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	opts := cluster.Options{Log: logger}
	const image = "kindest/node:v1.34.0"

	if _, err := cluster.InstallPrivilegedShim(ctx, image, opts); err != nil {
		fmt.Println(err)
		return
	}
	c, result, err := cluster.Ensure(ctx, cluster.Spec{Name: "demo", Image: image}, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(result, c.Context)
	net, err := cluster.EnsureNetwork(ctx, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("containers join", net.Name)
}
