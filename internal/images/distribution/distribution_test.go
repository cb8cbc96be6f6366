package distribution

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"sigs.k8s.io/yaml"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/images/standin"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/registry"
)

func TestStandIn(t *testing.T) {
	s := StandIn()
	if s.Name != "registry" || s.Ref != "devenv.local/registry:3" || s.For != "registry" {
		t.Errorf("stand-in = %s %s %s", s.Name, s.Ref, s.For)
	}
	// It stands in for Docker Hub's registry image however it is written.
	for _, ref := range []string{"registry:3", "docker.io/library/registry:3", "registry"} {
		if repo, _ := standin.SplitRef(ref); repo != s.For {
			t.Errorf("%s: repository %s", ref, repo)
		}
	}
	parts, err := s.Recipe()
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(parts, "\n")
	for _, want := range []string{Version, "FROM scratch", "rootdirectory: /var/lib/registry", "storage/driver/filesystem"} {
		if !strings.Contains(joined, want) {
			t.Errorf("recipe lacks %q", want)
		}
	}
}

// The build module pins distribution and builds a main like its
// cmd/registry, with the local storage drivers only.
func TestBuildModule(t *testing.T) {
	if got := string(goMod()); !strings.Contains(got, "require github.com/distribution/distribution/v3 "+Version+"\n") {
		t.Errorf("go.mod = %s", got)
	}
	src := string(mainGo)
	for _, want := range []string{"package main", "registry.RootCmd.Execute()", "driver/filesystem", "driver/inmemory"} {
		if !strings.Contains(src, want) {
			t.Errorf("main.go lacks %q", want)
		}
	}
	for _, cloud := range []string{"s3-aws", "azure", "gcs"} {
		if strings.Contains(src, cloud) {
			t.Errorf("main.go imports the %s driver", cloud)
		}
	}
}

func TestConfig(t *testing.T) {
	var cfg struct {
		Storage struct {
			Filesystem struct {
				RootDirectory string `json:"rootdirectory"`
			} `json:"filesystem"`
		} `json:"storage"`
		HTTP struct {
			Addr string `json:"addr"`
			TLS  any    `json:"tls"`
		} `json:"http"`
	}
	if err := yaml.Unmarshal(config, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Addr != ":"+strconv.Itoa(Port) || cfg.HTTP.TLS != nil || cfg.Storage.Filesystem.RootDirectory != DataDir {
		t.Errorf("config = %+v", cfg)
	}
	df := string(dockerfile)
	for _, want := range []string{"FROM scratch", "VOLUME " + DataDir, "EXPOSE " + strconv.Itoa(Port), `ENTRYPOINT ["/bin/registry"]`,
		`CMD ["serve", "` + ConfigPath + `"]`, "COPY config.yml " + ConfigPath, "OTEL_TRACES_EXPORTER=none"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

func TestBuildContext(t *testing.T) {
	tarball, err := buildContext([]byte("binary"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	tr := tar.NewReader(bytes.NewReader(tarball))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h.Mode
	}
	want := map[string]int64{"Dockerfile": 0o644, "registry": 0o755, "config.yml": 0o644, "var/": 0o755, "var/lib/": 0o755, "var/lib/registry/": 0o755, "tmp/": 0o1777}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("build context = %v, want %v", got, want)
	}
}

// TestIntegrationRegistry builds the stand-in, runs it on a loopback port
// and pushes an image into it twice: the second push uploads nothing.
func TestIntegrationRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image with go and Docker and runs a container")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cli, err := dockerx.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	s := StandIn()
	parts, err := s.Recipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	env := &standin.Env{Docker: cli, Log: log.Nop(), CacheDir: t.TempDir(), Step: func(step string) { t.Logf("%s: %s", time.Since(start).Round(time.Millisecond), step) }}
	if err := s.Build(ctx, env, s.Labels(standin.Hash(parts))); err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s in %s", Ref, time.Since(start).Round(time.Millisecond))

	port, _ := network.ParsePort(strconv.Itoa(Port) + "/tcp")
	name := fmt.Sprintf("devenv-test-registry-%d", time.Now().UnixNano())
	c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name,
		Config:     &container.Config{Image: Ref, ExposedPorts: network.PortSet{port: {}}},
		HostConfig: &container.HostConfig{PortBindings: network.PortMap{port: {{HostIP: netip.MustParseAddr("127.0.0.1")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_, _ = cli.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}()
	if _, err := cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	ins, err := cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bindings := ins.Container.NetworkSettings.Ports[port]
	if len(bindings) == 0 {
		t.Fatalf("port %s not published", port)
	}
	host := "127.0.0.1:" + bindings[0].HostPort
	t.Logf("waiting up to 30s for the registry at %s", host)
	var last error
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		last = err
		if time.Now().After(deadline) {
			var logs bytes.Buffer
			_ = dockerx.CopyLogs(ctx, cli, c.ID, 30, &logs)
			t.Fatalf("registry not serving: %v\n%s", last, logs.String())
		}
	}

	t.Setenv("DOCKER_CONFIG", t.TempDir())
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	_ = tw.WriteHeader(&tar.Header{Name: "hello", Mode: 0o644, Size: 5, Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte("hello"))
	_ = tw.Close()
	sum := sha256.Sum256(layer.Bytes())
	diffID := "sha256:" + hex.EncodeToString(sum[:])
	img := registry.Image{
		Config: []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + diffID + `"]}}`),
		Layers: []registry.Layer{{Digest: diffID, Size: int64(layer.Len()), Open: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(layer.Bytes())), nil
		}}},
	}
	opts := registry.PushOptions{Insecure: true}
	for i, want := range []int{2, 0} {
		res, err := registry.Push(ctx, img, host+"/devenv/test:1", opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.Uploaded != want {
			t.Errorf("push %d uploaded %d blobs, want %d", i+1, res.Uploaded, want)
		}
	}
}
