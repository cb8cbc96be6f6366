package h2_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/devenv-tool/devenv/h2"
)

// A program runs the H2 server on the kind network with a logger of its own
// and prints the JDBC URL pods use through a Service named h2.
func Example() {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ep, err := h2.Ensure(ctx, h2.Spec{Project: "demo", Network: "kind"}, h2.Options{Log: logger})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("host:", ep.HostAddress)
	fmt.Println("pods:", h2.JDBCURL(h2.ServiceName, ep.Port, "account"))
}
