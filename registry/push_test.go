package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
)

// testRegistry is go-containerregistry's in-process registry on loopback;
// it returns its host:port.
func testRegistry(t *testing.T) string {
	t.Helper()
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials of the user's
	s := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// layerTar is an uncompressed layer holding one file.
func layerTar(t *testing.T, name, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testImage is an image of uncompressed layers; opened counts the layers
// Push read.
func testImage(t *testing.T, opened *atomic.Int32, layers ...[]byte) Image {
	t.Helper()
	img := Image{}
	var diffIDs []string
	for _, b := range layers {
		sum := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(sum[:])
		diffIDs = append(diffIDs, d)
		img.Layers = append(img.Layers, Layer{Digest: d, Size: int64(len(b)), Open: func() (io.ReadCloser, error) {
			opened.Add(1)
			return io.NopCloser(bytes.NewReader(b)), nil
		}})
	}
	cfg := map[string]any{"architecture": "amd64", "os": "linux", "config": map[string]any{"Cmd": []string{"/app"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}}
	var err error
	if img.Config, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestPushUploadsOnlyMissingBlobs(t *testing.T) {
	host := testRegistry(t)
	ctx := context.Background()
	opts := PushOptions{Insecure: true}
	base1, base2 := layerTar(t, "etc/base", "base"), layerTar(t, "etc/more", "more")
	var opened atomic.Int32
	v1 := testImage(t, &opened, base1, base2, layerTar(t, "app/main", "version 1"))

	steps := []struct {
		name         string
		img          Image
		ref          string
		uploaded     int
		skipped      int
		manifest     bool
		opened       int32
		bytesAtLeast int64
	}{
		// 3 layers + config.
		{name: "first push", img: v1, ref: host + "/shop/account:one", uploaded: 4, skipped: 0, manifest: true, opened: 3, bytesAtLeast: 3 * 1024},
		{name: "same image, same tag", img: v1, ref: host + "/shop/account:one", uploaded: 0, skipped: 4, manifest: false, opened: 0},
		{name: "one layer differs", img: testImage(t, &opened, base1, base2, layerTar(t, "app/main", "version 2")), ref: host + "/shop/account:two",
			uploaded: 2, skipped: 2, manifest: true, opened: 1, bytesAtLeast: 1024},
		{name: "same image, new tag", img: v1, ref: host + "/shop/account:three", uploaded: 0, skipped: 4, manifest: true, opened: 0},
	}
	for _, s := range steps {
		opened.Store(0)
		res, err := Push(ctx, s.img, s.ref, opts)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if res.Uploaded != s.uploaded || res.Skipped != s.skipped || res.Manifest != s.manifest {
			t.Errorf("%s: uploaded %d, skipped %d, manifest %v; want %d, %d, %v", s.name, res.Uploaded, res.Skipped, res.Manifest, s.uploaded, s.skipped, s.manifest)
		}
		if got := opened.Load(); got != s.opened {
			t.Errorf("%s: opened %d layers, want %d", s.name, got, s.opened)
		}
		if res.UploadedBytes < s.bytesAtLeast || (s.uploaded == 0 && res.UploadedBytes != 0) {
			t.Errorf("%s: uploaded %d bytes", s.name, res.UploadedBytes)
		}
		if !strings.HasPrefix(res.Digest, "sha256:") || res.Ref != s.ref {
			t.Errorf("%s: result %+v", s.name, res)
		}
	}

	// The registry serves the image under its tag, config and all.
	cd, err := ConfigDigest(ctx, host+"/shop/account:one", opts)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(v1.Config)
	if want := "sha256:" + hex.EncodeToString(sum[:]); cd != want {
		t.Errorf("ConfigDigest = %s, want %s", cd, want)
	}
	if cd, err := ConfigDigest(ctx, host+"/shop/account:absent", opts); err != nil || cd != "" {
		t.Errorf("ConfigDigest of an absent tag = %q, %v", cd, err)
	}
}

func TestPushRefusesPlainHTTPUnlessInsecure(t *testing.T) {
	host := testRegistry(t)
	var opened atomic.Int32
	img := testImage(t, &opened, layerTar(t, "a", "a"))
	_, err := Push(context.Background(), img, host+"/x/y:1", PushOptions{})
	if err == nil {
		t.Fatal("pushed over plain HTTP without Insecure")
	}
	for _, want := range []string{host + "/x/y:1", "registry " + host, "insecure: true", "registry: {address: " + host} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if opened.Load() != 0 {
		t.Error("a layer was read")
	}
}

func TestPushUnreachable(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close() // nothing listens there now
	var opened atomic.Int32
	_, err = Push(context.Background(), testImage(t, &opened, layerTar(t, "a", "a")), host+"/x/y:1", PushOptions{Insecure: true})
	if err == nil || !strings.Contains(err.Error(), "is the registry running at "+host+"?") {
		t.Errorf("err = %v", err)
	}
}

func TestPushAuthErrorSaysLogin(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer s.Close()
	host := strings.TrimPrefix(s.URL, "http://")
	var opened atomic.Int32
	_, err := Push(context.Background(), testImage(t, &opened, layerTar(t, "a", "a")), host+"/x/y:1", PushOptions{Insecure: true})
	if err == nil || !strings.Contains(err.Error(), "docker login "+host) {
		t.Errorf("err = %v", err)
	}
}

func TestPushRejectsInconsistentImages(t *testing.T) {
	var opened atomic.Int32
	good := testImage(t, &opened, layerTar(t, "a", "a"))
	tests := []struct {
		name string
		edit func(*Image)
		want string
	}{
		{"no config", func(i *Image) { i.Config = nil }, "no config"},
		{"layer count", func(i *Image) { i.Layers = append(i.Layers, i.Layers[0]) }, "lists 1 layers, the image has 2"},
		{"digest is not the diffID", func(i *Image) { i.Layers[0].Digest = "sha256:" + strings.Repeat("0", 64) }, "differs from its diffID"},
		{"bad digest", func(i *Image) { i.Layers[0].Digest = "md5:x" }, "digest"},
		{"no opener", func(i *Image) { i.Layers[0].Open = nil }, "no Open"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := good
			img.Layers = append([]Layer(nil), good.Layers...)
			tc.edit(&img)
			_, err := Push(context.Background(), img, "127.0.0.1:1/x/y:1", PushOptions{Insecure: true})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestHint(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{errors.New(`Get "https://r:5000/v2/": http: server gave HTTP response to HTTPS client`), "insecure: true"},
		{&net.DNSError{Err: "no such host", Name: "r"}, "does not resolve"},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, "is the registry running at r:5000?"},
		{errors.New("something else"), ""},
	}
	for _, tc := range tests {
		got := hint("r:5000", tc.err)
		if (tc.want == "" && got != "") || !strings.Contains(got, tc.want) {
			t.Errorf("hint(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
