package h2

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/testenv"
)

// runOnce runs cmd in a new container of image on network and returns its output and exit code.
func runOnce(ctx context.Context, t *testing.T, cli *client.Client, image, network string, cmd []string) (string, int64) {
	t.Helper()
	out, errOut, code := testenv.RunContainer(ctx, t, cli,
		&container.Config{Image: image, Entrypoint: cmd, Labels: map[string]string{LabelProject: "h2-test"}},
		&container.HostConfig{NetworkMode: container.NetworkMode(network)})
	return out + errOut, code
}

func TestIntegrationEnsureAndJDBCRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cli, err := dockerx.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.ImageInspect(ctx, DefaultImage); err != nil {
		t.Skipf("%s is not built (devenv images build h2): %v", DefaultImage, err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	project := "h2test-" + hex.EncodeToString(b)
	netName := project + "-net"
	if _, err := cli.NetworkCreate(ctx, netName, client.NetworkCreateOptions{Driver: "bridge", Labels: map[string]string{LabelProject: project}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Remove(context.Background(), cli, project, true); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		_, _ = cli.NetworkRemove(context.Background(), netName, client.NetworkRemoveOptions{})
	})

	opts := Options{Docker: cli}
	spec := Spec{Project: project, Network: netName, Labels: map[string]string{"test": "yes"}}
	start := time.Now()
	ep, err := Ensure(ctx, spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("H2 ready in %s: %+v", time.Since(start).Round(time.Millisecond), ep)
	if ep.Port != 9092 || ep.IP == "" || ep.InternalAddress != ep.IP+":9092" || !strings.HasPrefix(ep.HostAddress, "127.0.0.1:") {
		t.Fatalf("endpoint = %+v", ep)
	}

	// Two separate client connections through the service alias: the table
	// survives the first connection thanks to DB_CLOSE_DELAY=-1.
	url := JDBCURL(ServiceName, ep.Port, "account")
	shell := func(sql string) string {
		out, code := runOnce(ctx, t, cli, DefaultImage, netName, []string{"java", "-cp", h2Jar, "org.h2.tools.Shell", "-url", url, "-user", "sa", "-password", "", "-sql", sql})
		if code != 0 {
			t.Fatalf("H2 Shell %q exited %d:\n%s", sql, code, out)
		}
		return out
	}
	shell("CREATE TABLE account(id BIGINT PRIMARY KEY, owner VARCHAR(64), balance DECIMAL(12,2)); INSERT INTO account VALUES (1, 'alice', 100.00), (2, 'bob', 50.50)")
	out := shell("SELECT COUNT(*) AS N, SUM(balance) AS S, H2VERSION() AS V FROM account")
	for _, want := range []string{"150.50", "2.1.214"} {
		if !strings.Contains(out, want) {
			t.Fatalf("query output lacks %q:\n%s", want, out)
		}
	}

	// Same spec: the same container is reused.
	start = time.Now()
	again, err := Ensure(ctx, spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	if again.ContainerID != ep.ContainerID || again.HostAddress != ep.HostAddress {
		t.Fatalf("second Ensure replaced the container: %+v vs %+v", again, ep)
	}
	t.Logf("second Ensure took %s", time.Since(start).Round(time.Millisecond))

	// A changed spec recreates it.
	spec.Labels = map[string]string{"test": "changed"}
	changed, err := Ensure(ctx, spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	if changed.ContainerID == ep.ContainerID {
		t.Fatal("a changed spec kept the old container")
	}
	insp, err := cli.ContainerInspect(ctx, changed.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l := insp.Container.Config.Labels; l[LabelComponent] != "h2" || l[LabelProject] != project || l["test"] != "changed" {
		t.Fatalf("labels = %v", l)
	}
}
