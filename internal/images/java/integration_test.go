package java_test

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/images"
	"github.com/devenv-tool/devenv/internal/images/java"
	"github.com/devenv-tool/devenv/internal/images/standin"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/testenv"
)

// run runs a container of image to completion and returns its output and exit code.
func run(ctx context.Context, t *testing.T, cli *client.Client, image string, entrypoint []string) (string, int64) {
	t.Helper()
	out, errOut, code := testenv.RunContainer(ctx, t, cli, &container.Config{Image: image, Entrypoint: entrypoint}, nil)
	return out + errOut, code
}

// helloJar compiles a one-class program with the host's javac and packs it as
// an executable jar.
func helloJar(t *testing.T) []byte {
	t.Helper()
	javac, err := exec.LookPath("javac")
	if err != nil {
		t.Skip("javac is not installed on the host (apt-get install -y default-jdk-headless)")
	}
	dir := t.TempDir()
	src := "public class Hello { public static void main(String[] a) { System.out.println(\"hello from a jar on Java \" + Runtime.version().feature()); } }\n"
	if err := os.WriteFile(filepath.Join(dir, "Hello.java"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(javac, "--release", "11", "-d", dir, filepath.Join(dir, "Hello.java")).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	class, err := os.ReadFile(filepath.Join(dir, "Hello.class"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range map[string][]byte{
		"META-INF/MANIFEST.MF": []byte("Manifest-Version: 1.0\r\nMain-Class: Hello\r\n\r\n"),
		"Hello.class":          class,
	} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestIntegrationJREAndH2(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker and the Debian mirror")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cli, err := dockerx.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var out bytes.Buffer
	if err := images.Build(ctx, cli, images.BuildOptions{Only: []string{java.JREName, java.H2Name}, Out: &out, Log: log.Nop()}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Logf("build:\n%s", out.String())

	if got, code := run(ctx, t, cli, java.JRERef, []string{"java", "-version"}); code != 0 || !strings.Contains(got, `version "17`) {
		t.Fatalf("java -version exited %d:\n%s", code, got)
	}

	// Like a service image FROM eclipse-temurin:17-jre: java -jar /app/x.jar.
	ref := standin.Registry + "/jre-test-app:1"
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	df := "FROM " + java.JRERef + "\nCOPY x.jar /app/x.jar\nENTRYPOINT [\"java\", \"-Xmx64m\", \"-jar\", \"/app/x.jar\"]\n"
	if err := standin.BuildDockerfile(ctx, &standin.Env{Docker: cli}, standin.DockerBuild{Ref: ref, Files: map[string][]byte{"Dockerfile": []byte(df), "x.jar": helloJar(t)}}); err != nil {
		t.Fatal(err)
	}
	if got, code := run(ctx, t, cli, ref, nil); code != 0 || !strings.Contains(got, "hello from a jar on Java 17") {
		t.Fatalf("java -jar exited %d:\n%s", code, got)
	}

	// The H2 image's jar works on the JRE: an in-memory database via H2's Shell.
	shell := []string{"java", "-cp", java.H2Jar, "org.h2.tools.Shell", "-url", "jdbc:h2:mem:t;DB_CLOSE_DELAY=-1", "-user", "sa", "-sql",
		"CREATE TABLE t(id INT); INSERT INTO t VALUES (21); SELECT id * 2 AS answer FROM t"}
	if got, code := run(ctx, t, cli, java.H2Ref, shell); code != 0 || !strings.Contains(got, "42") {
		t.Fatalf("H2 Shell exited %d:\n%s", code, got)
	}
	img, err := cli.ImageInspect(ctx, java.H2Ref)
	if err != nil {
		t.Fatal(err)
	}
	if img.Config.User != "h2" || len(img.Config.Entrypoint) == 0 || !strings.Contains(strings.Join(img.Config.Entrypoint, " "), "-tcpAllowOthers") {
		t.Fatalf("H2 image config: user %q entrypoint %q", img.Config.User, img.Config.Entrypoint)
	}
	jre, err := cli.ImageInspect(ctx, java.JRERef)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image sizes: jre %.0f MB, h2 %.0f MB", float64(jre.Size)/1e6, float64(img.Size)/1e6)
}
