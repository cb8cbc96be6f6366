package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/devenv-tool/devenv/kafka"
)

// A program runs a broker on the kind network with a logger of its own. It
// configures testcontainers-go for this process first (Ensure refuses to run
// while testcontainers-go's reaper would remove the broker at exit).
func Example() {
	ctx := context.Background()
	if err := kafka.ConfigureTestcontainers(); err != nil {
		fmt.Println(err)
		return
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ep, err := kafka.Ensure(ctx, kafka.Spec{
		Project: "demo",
		Network: "kind",
		Topics:  []kafka.Topic{{Name: "orders", Partitions: 3}},
	}, kafka.Options{Log: logger})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("pods:", ep.InternalAddress, "host:", ep.HostAddress)
}
