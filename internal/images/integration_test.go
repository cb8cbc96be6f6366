package images

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/images/java"
	"github.com/devenv-tool/devenv/internal/images/standin"
	"github.com/devenv-tool/devenv/internal/log"
)

func dockerForTest(t *testing.T) *client.Client {
	t.Helper()
	cli, err := dockerx.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func randomName(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "t" + hex.EncodeToString(b)
}

// tinyStandIn is a FROM scratch stand-in whose recipe is *content.
func tinyStandIn(t *testing.T, name, forRepo string, content *string, builds *int) standin.StandIn {
	ref := standin.Registry + "/" + name + ":1"
	var ids []string // every image built, so replaced ones do not linger untagged
	t.Cleanup(func() {
		cli := dockerForTest(t)
		_, _ = cli.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		for _, id := range ids {
			_, _ = cli.ImageRemove(context.Background(), id, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		}
		// The builder's intermediate images (one per LABEL) carry the name too.
		left, err := cli.ImageList(context.Background(), client.ImageListOptions{All: true, Filters: client.Filters{}.Add("label", standin.LabelName+"="+name)})
		if err == nil {
			for _, img := range left.Items {
				_, _ = cli.ImageRemove(context.Background(), img.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true})
			}
		}
	})
	return standin.StandIn{
		Name: name,
		Ref:  ref,
		For:  forRepo,
		Recipe: func() ([]string, error) {
			return []string{*content}, nil
		},
		Build: func(ctx context.Context, env *standin.Env, labels map[string]string) error {
			*builds++
			env.Step("packing one file")
			err := standin.BuildDockerfile(ctx, env, standin.DockerBuild{
				Ref:    ref,
				Files:  map[string][]byte{"Dockerfile": []byte("FROM scratch\nCOPY hello.txt /hello.txt\n"), "hello.txt": []byte(*content)},
				Labels: labels,
			})
			if img, ierr := env.Docker.ImageInspect(ctx, ref); ierr == nil {
				ids = append(ids, img.ID)
			}
			return err
		},
	}
}

func imageID(t *testing.T, cli *client.Client, ref string) string {
	t.Helper()
	img, err := cli.ImageInspect(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return img.ID
}

func TestIntegrationBuildSkipsUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker")
	}
	ctx := context.Background()
	cli := dockerForTest(t)
	name := randomName(t)
	content, builds := "hello 1", 0
	s := tinyStandIn(t, name, "", &content, &builds)
	var out bytes.Buffer
	opts := BuildOptions{StandIns: []standin.StandIn{s}, Out: &out, CacheDir: t.TempDir(), Log: log.Nop()}

	if err := Build(ctx, cli, opts); err != nil {
		t.Fatal(err)
	}
	if builds != 1 || !strings.Contains(out.String(), "✓ "+name+" built in") || !strings.Contains(out.String(), "] packing one file") {
		t.Fatalf("first run: builds=%d output:\n%s", builds, out.String())
	}
	id1 := imageID(t, cli, s.Ref)

	out.Reset()
	start := time.Now()
	if err := Build(ctx, cli, opts); err != nil {
		t.Fatal(err)
	}
	if builds != 1 || !strings.Contains(out.String(), "✓ "+name+" up to date ("+s.Ref+")") {
		t.Fatalf("second run rebuilt: builds=%d output:\n%s", builds, out.String())
	}
	if id := imageID(t, cli, s.Ref); id != id1 {
		t.Fatalf("second run changed the image: %s -> %s", id1, id)
	}
	t.Logf("second run took %s", time.Since(start))

	opts.Force = true
	if err := Build(ctx, cli, opts); err != nil {
		t.Fatal(err)
	}
	if builds != 2 {
		t.Fatalf("--force did not rebuild: builds=%d", builds)
	}
	opts.Force = false

	content = "hello 2"
	if err := Build(ctx, cli, opts); err != nil {
		t.Fatal(err)
	}
	if builds != 3 {
		t.Fatalf("a changed recipe did not rebuild: builds=%d", builds)
	}
	if id := imageID(t, cli, s.Ref); id == id1 {
		t.Fatal("a changed recipe kept the old image")
	}
	infos, err := list(ctx, cli, []standin.StandIn{s})
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || !infos[0].Present || !infos[0].UpToDate || infos[0].Created.IsZero() {
		t.Fatalf("list = %+v", infos)
	}
}

func TestIntegrationBuildMissingPrereq(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker")
	}
	content, builds := "x", 0
	s := tinyStandIn(t, randomName(t), "", &content, &builds)
	s.Prereqs = []standin.Prereq{{Command: "devenv-no-such-tool", Package: "no-such-pkg"}, {Command: "go", Package: "golang"}}
	t.Setenv("PATH", t.TempDir())
	err := Build(context.Background(), dockerForTest(t), BuildOptions{StandIns: []standin.StandIn{s}, CacheDir: t.TempDir()})
	var pe *MissingPrereqsError
	if !errors.As(err, &pe) || builds != 0 {
		t.Fatalf("err = %v, builds = %d", err, builds)
	}
	for _, want := range []string{"apt-get install -y no-such-pkg", "https://go.dev/dl"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "apt-get install -y golang") {
		t.Errorf("error suggests Debian's Go:\n%v", err)
	}
}

func TestIntegrationResolveAndSaveLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker")
	}
	ctx := context.Background()
	cli := dockerForTest(t)
	name := randomName(t)
	content, builds := "stand-in", 0
	fake := "example.invalid/" + name
	s := tinyStandIn(t, name, fake, &content, &builds)
	var logBuf bytes.Buffer
	r := &Resolver{Docker: cli, Log: log.New(&logBuf, false), StandIns: []standin.StandIn{s}, PullTimeout: 5 * time.Second}

	// No stand-in built yet: ErrNoImage naming the build command.
	_, err := r.Resolve(ctx, fake+":1.0")
	if !errors.Is(err, ErrNoImage) || !strings.Contains(err.Error(), "devenv images build "+name) {
		t.Fatalf("err = %v", err)
	}
	if err := Build(ctx, cli, BuildOptions{StandIns: []standin.StandIn{s}, CacheDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := r.Resolve(ctx, fake+":1.0")
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("second resolve took %s; the can't-pull answer should be remembered", time.Since(start))
	}
	want := fake + ":1.0 cannot be pulled; using stand-in " + s.Ref
	if !res.StandIn || res.Ref != s.Ref || res.Note != want || !strings.Contains(logBuf.String(), want) {
		t.Fatalf("res = %+v, log = %q", res, logBuf.String())
	}
	// With RememberIn, a later process (a new Resolver) uses the stand-in
	// without trying the registry again.
	mem := t.TempDir()
	var first, second bytes.Buffer
	for _, buf := range []*bytes.Buffer{&first, &second} {
		r2 := &Resolver{Docker: cli, Log: log.New(buf, true), StandIns: []standin.StandIn{s}, PullTimeout: 5 * time.Second, RememberIn: mem}
		if res, err := r2.Resolve(ctx, fake+":1.0"); err != nil || res.Ref != s.Ref {
			t.Fatalf("remembering resolver: %+v, %v", res, err)
		}
	}
	if !strings.Contains(first.String(), "trying to pull") || strings.Contains(second.String(), "trying to pull") ||
		!strings.Contains(second.String(), "a pull failed recently") {
		t.Errorf("the second process tried the registry again:\nfirst: %s\nsecond: %s", first.String(), second.String())
	}
	// A present image is used as it is.
	if res, err := r.Resolve(ctx, s.Ref); err != nil || res.StandIn || res.Ref != s.Ref {
		t.Fatalf("present image: %+v, %v", res, err)
	}
	// An unknown image: ErrNoImage that says there is no stand-in.
	if _, err := r.Resolve(ctx, "example.invalid/other:1"); !errors.Is(err, ErrNoImage) || !strings.Contains(err.Error(), "no stand-in") {
		t.Fatalf("err = %v", err)
	}

	// Save, remove, load.
	file := filepath.Join(t.TempDir(), "images.tar.gz")
	if err := Save(ctx, cli, file, []string{s.Ref}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(file); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("archive is not gzip: %v", err)
	}
	id := imageID(t, cli, s.Ref)
	if _, err := cli.ImageRemove(ctx, s.Ref, client.ImageRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ImageInspect(ctx, s.Ref); !cerrdefs.IsNotFound(err) {
		t.Fatalf("image still present after remove: %v", err)
	}
	loaded, err := Load(ctx, cli, file, log.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || loaded[0] != s.Ref || imageID(t, cli, s.Ref) != id {
		t.Fatalf("loaded = %v", loaded)
	}
	if err := Save(ctx, cli, filepath.Join(t.TempDir(), "x.tar"), []string{"devenv.local/nope:1"}); err == nil || !strings.Contains(err.Error(), "devenv.local/nope:1 is not present") {
		t.Fatalf("saving a missing image: %v", err)
	}
}

// TestIntegrationBuildOnStandIn builds a service Dockerfile FROM
// eclipse-temurin:17-jre, which cannot be pulled here, on the JRE stand-in.
func TestIntegrationBuildOnStandIn(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker")
	}
	ctx := context.Background()
	cli := dockerForTest(t)
	if _, err := cli.ImageInspect(ctx, java.JRERef); err != nil {
		t.Skipf("%s is not built (devenv images build jre): %v", java.JRERef, err)
	}
	if _, err := cli.ImageInspect(ctx, "eclipse-temurin:17-jre"); err == nil {
		t.Skip("eclipse-temurin:17-jre is present; nothing to stand in for")
	}
	dockerfile := []byte("FROM eclipse-temurin:17-jre\nVOLUME /tmp\nRUN java -version 2>&1 | grep -q 'version \"17' && echo ok > /ok\nENTRYPOINT [\"java\", \"-jar\", \"/app.jar\"]\n")
	r := &Resolver{Docker: cli, Log: log.Nop(), PullTimeout: 10 * time.Second}
	newDF, args, notes, err := RewriteDockerfile(dockerfile, nil, r.Func(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(newDF), "FROM "+java.JRERef+"\n") || len(notes) != 1 {
		t.Fatalf("rewritten:\n%s\nnotes %q", newDF, notes)
	}
	ref := standin.Registry + "/test-service-" + randomName(t) + ":1"
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	env := &standin.Env{Docker: cli, Log: log.Nop()}
	if err := standin.BuildDockerfile(ctx, env, standin.DockerBuild{Ref: ref, Files: map[string][]byte{"Dockerfile": newDF}, BuildArgs: args}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ImageInspect(ctx, "eclipse-temurin:17-jre"); !cerrdefs.IsNotFound(err) {
		t.Fatalf("the stand-in was tagged under the real name: %v", err)
	}
}
