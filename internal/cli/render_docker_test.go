package cli

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/kafka"
	"github.com/devenv-tool/devenv/project"
)

// TestIntegrationRenderAsksDocker runs a labelled container standing in for
// Kafka and checks that render writes its address instead of the placeholder.
func TestIntegrationRenderAsksDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli, err := dockerx.Connect(ctx)
	if err != nil {
		t.Skipf("no Docker: %v", err)
	}
	defer cli.Close()
	image := ""
	for _, ref := range []string{"devenv.local/debian-base:bookworm", "debian:bookworm-slim", "busybox:latest"} {
		if _, err := cli.ImageInspect(ctx, ref); err == nil {
			image = ref
			break
		}
	}
	if image == "" {
		t.Skip("no local image with sleep to run (build one with devenv images build)")
	}
	name := fmt.Sprintf("rendertest%d", time.Now().UnixNano()%1_000_000)
	// The labels kafka.Find reads: ownership, and where the INTERNAL
	// listener is (port, and the network whose address it is: the default
	// bridge the container runs on).
	labels := project.ID{Name: name}.Labels(project.ComponentKafka)
	labels[project.LabelKafkaPort] = "9092"
	labels[project.LabelKafkaNetwork] = "bridge"
	// and, as a broker container does, its host listener published on loopback.
	hostListener := network.MustParsePort(strconv.Itoa(kafka.HostListenerPort) + "/tcp")
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: project.ID{Name: name}.ContainerName(project.ComponentKafka),
		Config: &container.Config{Image: image, Cmd: []string{"sleep", "300"},
			Labels: labels, ExposedPorts: network.PortSet{hostListener: {}}},
		HostConfig: &container.HostConfig{AutoRemove: false,
			PortBindings: network.PortMap{hostListener: {{HostIP: netip.MustParseAddr("127.0.0.1")}}}},
	})
	if err != nil {
		t.Fatalf("creating container: %v", err)
	}
	t.Cleanup(func() {
		_, _ = cli.ContainerRemove(context.Background(), created.ID, client.ContainerRemoveOptions{Force: true})
	})
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("starting container: %v", err)
	}
	insp, err := cli.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ip string
	if es := insp.Container.NetworkSettings.Networks["bridge"]; es != nil && es.IPAddress.Is4() {
		ip = es.IPAddress.String()
	}
	if ip == "" {
		t.Fatal("container has no IPv4 address on the bridge network")
	}

	dir := t.TempDir()
	f := filepath.Join(dir, "devenv.yaml")
	if err := os.WriteFile(f, []byte("name: "+name+"\nkafka: {}\nservices: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, out, errOut := run(t, "render", "-f", f)
	t.Logf("render with a Docker lookup took %v", time.Since(start))
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "- "+ip+"\n") || strings.Contains(out, "placeholder") {
		t.Errorf("render did not use the container's address %s:\n%s", ip, out)
	}
	_, out, _ = run(t, "render", "-f", f, "--docker=false")
	if strings.Contains(out, ip) || !strings.Contains(out, "devenv.dev/placeholder") {
		t.Errorf("--docker=false still asked Docker:\n%s", out)
	}
}
