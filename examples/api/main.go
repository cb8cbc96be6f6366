// Command devenvapi shows devenv's exported packages used from another
// module: it creates (or reuses) a kind cluster, starts Kafka and the H2
// server on the kind Docker network, and prints where they answer. It logs
// through a log/slog logger of its own; nothing here needs devenv's internal
// packages.
//
//	go run . -name demo -image kindest/node:v1.34.0
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/h2"
	"github.com/devenv-tool/devenv/kafka"
	"github.com/devenv-tool/devenv/project"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("devenvapi", flag.ContinueOnError)
	name := fs.String("name", "demo", "project and cluster name")
	image := fs.String("image", "kindest/node:v1.34.0", "kind node image (must be in Docker or pullable)")
	kafkaImage := fs.String("kafka-image", kafka.DefaultImage, "Kafka broker image")
	h2Image := fs.String("h2-image", h2.DefaultImage, "H2 server image")
	debug := fs.Bool("v", false, "debug output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	// The two process-wide settings the library leaves to the program.
	if err := kafka.ConfigureTestcontainers(); err != nil {
		return err
	}
	docker, err := client.New(client.FromEnv)
	if err != nil {
		return fmt.Errorf("connecting to Docker: %w", err)
	}
	defer docker.Close()
	if _, err := cluster.InstallPrivilegedShim(ctx, *image, cluster.Options{Docker: docker, Log: logger}); err != nil {
		return err
	}

	c, result, err := cluster.Ensure(ctx, cluster.Spec{Name: *name, Image: *image}, cluster.Options{Docker: docker, Log: logger})
	if err != nil {
		return err
	}
	fmt.Printf("cluster %s: %s (context %s)\n", *name, result, c.Context)

	k, err := kafka.Ensure(ctx, kafka.Spec{Project: *name, Image: *kafkaImage, Network: project.NetworkName},
		kafka.Options{Docker: docker, Log: logger})
	if err != nil {
		return err
	}
	fmt.Printf("kafka: %s on the %s network, %s from the host\n", k.InternalAddress, project.NetworkName, k.HostAddress)

	db, err := h2.Ensure(ctx, h2.Spec{Project: *name, Image: *h2Image, Network: project.NetworkName},
		h2.Options{Docker: docker, Log: logger})
	if err != nil {
		return err
	}
	fmt.Printf("h2: %s on the %s network, %s from the host\n", db.InternalAddress, project.NetworkName, db.HostAddress)
	return nil
}
