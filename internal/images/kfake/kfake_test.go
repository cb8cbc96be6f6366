package kfake

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/images/standin"
	"github.com/devenv-tool/devenv/internal/log"
)

func TestVersionsMatchGoMod(t *testing.T) {
	b, err := os.ReadFile("../../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"github.com/twmb/franz-go":           FranzGoVersion,
		"github.com/twmb/franz-go/pkg/kfake": KfakeVersion,
		"github.com/twmb/franz-go/pkg/kmsg":  KmsgVersion,
	}
	found := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 {
			if _, ok := want[f[0]]; ok {
				found[f[0]] = f[1]
			}
		}
	}
	for mod, v := range want {
		if found[mod] != v {
			t.Errorf("go.mod has %s %q, the kfake builder pins %q: update the constants in kfake.go", mod, found[mod], v)
		}
	}
}

func TestStandIn(t *testing.T) {
	s := StandIn()
	if s.Name != "kafka" || s.Ref != "devenv.local/kafka:kfake" || s.For != "apache/kafka" {
		t.Errorf("stand-in = %s %s %s", s.Name, s.Ref, s.For)
	}
	parts, err := s.Recipe()
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(parts, "\n")
	for _, want := range []string{"fakebroker.go=", "proxy.go=", KfakeVersion, "FROM scratch"} {
		if !strings.Contains(joined, want) {
			t.Errorf("recipe lacks %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "_test.go") {
		t.Error("recipe covers test files")
	}
}

func TestBuildContext(t *testing.T) {
	tarball, err := buildContext([]byte("binary"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(tarball)
	for _, want := range []string{"Dockerfile", "devenv-kafka", "data/", "ENTRYPOINT"} {
		if !strings.Contains(s, want) {
			t.Errorf("build context lacks %q", want)
		}
	}
}

func TestIntegrationBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image with go and Docker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
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
	hash := standin.Hash(parts)
	start := time.Now()
	env := &standin.Env{Docker: cli, Log: log.Nop(), CacheDir: t.TempDir(), Step: func(step string) { t.Logf("%s: %s", time.Since(start).Round(time.Millisecond), step) }}
	if err := s.Build(ctx, env, s.Labels(hash)); err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s in %s", Ref, time.Since(start).Round(time.Millisecond))
	img, err := cli.ImageInspect(ctx, Ref)
	if err != nil {
		t.Fatal(err)
	}
	labels := img.Config.Labels
	if labels[standin.LabelBroker] != Broker || labels[standin.LabelRecipe] != hash || labels[standin.LabelName] != Name {
		t.Errorf("labels = %v", labels)
	}
	if _, ok := img.Config.Volumes[DataDir]; !ok {
		t.Errorf("volumes = %v, want %s", img.Config.Volumes, DataDir)
	}
	if strings.Join(img.Config.Entrypoint, " ") != "/devenv-kafka" {
		t.Errorf("entrypoint = %v", img.Config.Entrypoint)
	}
}
