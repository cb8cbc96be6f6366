package images

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/images/java"
	"github.com/devenv-tool/devenv/internal/images/kfake"
)

// fakeEngine answers image inspects for the images in present (404 for
// the rest), lists no images by label, and refuses every pull, counting them.
func fakeEngine(t *testing.T, present ...string) (*client.Client, *atomic.Int32) {
	t.Helper()
	var pulls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path[strings.Index(r.URL.Path[1:], "/")+1:] // without /v1.47
		switch {
		case path == "/images/json":
			_, _ = w.Write([]byte("[]"))
		case path == "/images/create":
			pulls.Add(1)
			http.Error(w, `{"message":"no network"}`, http.StatusInternalServerError)
		case strings.HasPrefix(path, "/images/") && strings.HasSuffix(path, "/json"):
			name := strings.TrimSuffix(strings.TrimPrefix(path, "/images/"), "/json")
			for _, p := range present {
				if p == name {
					_, _ = w.Write([]byte(`{"Id":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}`))
					return
				}
			}
			http.Error(w, `{"message":"No such image: `+name+`"}`, http.StatusNotFound)
		default:
			http.Error(w, `{"message":"not faked"}`, http.StatusNotImplemented)
		}
	}))
	t.Cleanup(srv.Close)
	cli, err := client.New(client.WithHost("tcp://"+strings.TrimPrefix(srv.URL, "http://")), client.WithAPIVersion("1.47"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli, &pulls
}

// TestResolveOffline: without pulling (NoPull, as bundle does) a present
// image is itself and a missing one is its present stand-in, else an error
// saying how to get it; with stand-ins loaded from a bundle, up uses them
// without trying the registry, and without that note it tries once.
func TestResolveOffline(t *testing.T) {
	const jre = "eclipse-temurin:17-jre"
	tests := []struct {
		name    string
		present []string
		noPull  bool
		loaded  []string // refs noted as loaded from a bundle
		ref     string
		want    string // the image used
		wantErr string
		pulls   int32
	}{
		{name: "bundle: the real image is present", present: []string{jre, java.JRERef}, noPull: true, ref: jre, want: jre},
		{name: "bundle: only the stand-in is present", present: []string{java.JRERef}, noPull: true, ref: jre, want: java.JRERef},
		{name: "bundle: neither", noPull: true, ref: jre, wantErr: "eclipse-temurin:17-jre is not present: pull it (`docker pull eclipse-temurin:17-jre`) or build its stand-in (`devenv images build jre`)"},
		{name: "bundle: a missing stand-in named directly", noPull: true, ref: kfake.Ref, wantErr: "build it with `devenv images build kafka`"},
		{name: "bundle: an image devenv has no stand-in for", noPull: true, ref: "alpine:3.20", wantErr: "pull it (`docker pull alpine:3.20`) or load it"},
		{name: "up after a bundle's load: no pull", present: []string{java.JRERef}, loaded: []string{java.JRERef}, ref: jre, want: java.JRERef},
		{name: "up after a load with the real image present", present: []string{jre, java.JRERef}, loaded: []string{java.JRERef}, ref: jre, want: jre},
		{name: "up without a load tries the registry once", present: []string{java.JRERef}, ref: jre, want: java.JRERef, pulls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli, pulls := fakeEngine(t, tt.present...)
			dir := filepath.Join(t.TempDir(), "pull-failed")
			if _, err := NoteLoaded(dir, tt.loaded); err != nil {
				t.Fatal(err)
			}
			r := &Resolver{Docker: cli, NoPull: tt.noPull, RememberIn: dir}
			got, err := r.Resolve(t.Context(), tt.ref)
			switch {
			case tt.wantErr != "":
				if !errors.Is(err, ErrNoImage) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Resolve(%s): %v; want ErrNoImage and %q", tt.ref, err, tt.wantErr)
				}
			case err != nil:
				t.Errorf("Resolve(%s): %v", tt.ref, err)
			case got.Ref != tt.want || got.StandIn != (tt.want != tt.ref):
				t.Errorf("Resolve(%s) = %+v, want %s", tt.ref, got, tt.want)
			}
			if pulls.Load() != tt.pulls {
				t.Errorf("%d pulls, want %d", pulls.Load(), tt.pulls)
			}
		})
	}
}
