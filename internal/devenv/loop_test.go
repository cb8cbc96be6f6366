package devenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/render"
	"github.com/devenv-tool/devenv/internal/testenv"
	"github.com/devenv-tool/devenv/watch"
)

// The loop's decisions, with fakes for the cluster, the builder and Docker:
// each test asserts on the calls the fakes received and on the lines the
// user sees.

// fakeCluster is the loop's liveUpdater, swapper, loader and deployer. It
// records every call, in order, as one line.
type fakeCluster struct {
	mu    sync.Mutex
	calls []string
	// targets are each service's running containers; targetsErr an error
	// LiveTargets returns instead.
	targets    map[string][]cluster.LiveTarget
	targetsErr error
	// live answers the nth LiveUpdate call (0-based); nil succeeds.
	live    func(n int) error
	nLive   int
	swapErr error
	// rollout answers WaitRollout; nil succeeds.
	rollout func(ctx context.Context) error
	applied [][]*unstructured.Unstructured
	// onNodes are the images every node already holds (MissingImages
	// leaves them out; it is not recorded as a call).
	onNodes map[string]bool
	// unchanged answers Unchanged.
	unchanged bool
	// rolledOut are the Deployments RolledOut finds rolled out (it is not
	// recorded as a call; WaitRollout is, for the others).
	rolledOut map[string]bool
}

func (f *fakeCluster) MissingImages(_ context.Context, refs []string) ([]string, error) {
	var missing []string
	for _, r := range refs {
		if !f.onNodes[r] {
			missing = append(missing, r)
		}
	}
	return missing, nil
}

func (f *fakeCluster) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeCluster) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeCluster) LiveTargets(_ context.Context, namespace, service string) ([]cluster.LiveTarget, error) {
	f.record("LiveTargets %s/%s", namespace, service)
	if f.targetsErr != nil {
		return nil, f.targetsErr
	}
	return f.targets[service], nil
}

func (f *fakeCluster) LiveUpdate(_ context.Context, t cluster.LiveTarget, files []byte, removed []string, port int, _ time.Duration) error {
	f.record("LiveUpdate %s port %d write %s remove %q", t.Pod, port, tarFiles(files), removed)
	n := f.nLive
	f.nLive++
	if f.live != nil {
		return f.live(n)
	}
	return nil
}

func (f *fakeCluster) SwapImage(_ context.Context, namespace, service, ref string, _ time.Duration) error {
	f.record("SwapImage %s/%s %s", namespace, service, ref)
	return f.swapErr
}

func (f *fakeCluster) LoadParts(_ context.Context, ref string, _ *build.Assembled) error {
	f.record("LoadParts %s", ref)
	return nil
}

func (f *fakeCluster) LoadImage(_ context.Context, ref string) (bool, error) {
	f.record("LoadImage %s", ref)
	return true, nil
}

func (f *fakeCluster) Apply(_ context.Context, objs []*unstructured.Unstructured, selector map[string]string) (cluster.ApplyResult, error) {
	f.record("Apply")
	f.mu.Lock()
	f.applied = append(f.applied, objs)
	f.mu.Unlock()
	return cluster.ApplyResult{Changed: []string{"x"}}, nil
}

func (f *fakeCluster) Unchanged(context.Context, []*unstructured.Unstructured, map[string]string, map[string]string) (bool, error) {
	f.record("Unchanged")
	return f.unchanged, nil
}

func (f *fakeCluster) RolledOut(_ context.Context, _ string, names []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, n := range names {
		if f.rolledOut[n] {
			out[n] = true
		}
	}
	return out, nil
}

func (f *fakeCluster) WaitRollout(ctx context.Context, namespace, name string, _ time.Duration) error {
	f.record("WaitRollout %s/%s", namespace, name)
	if f.rollout != nil {
		return f.rollout(ctx)
	}
	return nil
}

// tarFiles lists a tar's regular files as name=content.
func tarFiles(b []byte) string {
	var out []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Typeflag == tar.TypeReg {
			data, _ := io.ReadAll(tr)
			out = append(out, "/"+strings.Trim(h.Name, "/")+"="+string(data))
		}
	}
	return "[" + strings.Join(out, " ") + "]"
}

// fakeBuilder returns the image set for each service.
type fakeBuilder struct {
	next  map[string]built
	err   error
	calls []string
}

func (b *fakeBuilder) Build(_ context.Context, s *config.Service, o buildOptions) (built, error) {
	b.calls = append(b.calls, "Build "+s.Name)
	if o.BeforeImage != nil {
		o.BeforeImage()
	}
	if b.err != nil {
		return built{}, b.err
	}
	r, ok := b.next[s.Name]
	if !ok {
		return built{}, fmt.Errorf("no image for %s", s.Name)
	}
	return r, nil
}

// fakeFinder answers with the addresses set.
type fakeFinder map[string]string

func (f fakeFinder) FindIP(_ context.Context, component string) (string, bool, error) {
	ip, ok := f[component]
	return ip, ok, nil
}

// image is an assembled live image: a base layer, settings (env) and one
// layer with files (path -> content).
func image(t *testing.T, base, env string, files map[string]string) *build.Assembled {
	t.Helper()
	cfg, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Env": []string{env}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes()) // a layer's DiffID is its tar's digest
	return &build.Assembled{Config: cfg, Live: true, Layers: []build.Layer{
		{DiffID: base},
		{DiffID: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(buf.Len()), Data: buf.Bytes()},
	}}
}

const (
	refV1   = "devenv.local/t-account:v1"
	refV2   = "devenv.local/t-account:v2"
	refTM   = "devenv.local/t-transfermoney:v1"
	kafkaIP = "172.18.255.254"
	h2IP    = "172.18.255.253"
)

// writeProject writes a project with two services, Kafka and an H2 server,
// and returns its devenv.yaml. extra is appended to the services.
func writeProject(t *testing.T, dir, file, extra string) string {
	t.Helper()
	for _, s := range []string{"account", "transfermoney", "ledger"} {
		if err := os.MkdirAll(filepath.Join(dir, s), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, s, "Dockerfile"), []byte("FROM scratch\nCOPY app /app\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := filepath.Join(dir, file)
	y := `name: t
kafka: {}
h2: {mode: server}
services:
  account: {context: ./account, port: 8080}
  transfermoney:
    context: ./transfermoney
    port: 8080
` + extra
	if err := os.WriteFile(f, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

type harness struct {
	l     *loop
	c     *fakeCluster
	b     *fakeBuilder
	f     fakeFinder
	out   *testenv.Log
	v1    *build.Assembled
	files string // the project's devenv.yaml
}

// newHarness returns a loop as Up leaves it: account runs image v1 (files
// app=v1) in pod account-1, transfermoney runs its image, Kafka and H2 run.
func newHarness(t *testing.T) *harness {
	t.Helper()
	files := writeProject(t, t.TempDir(), "devenv.yaml", "")
	cfg, err := config.Load(files)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{c: &fakeCluster{}, b: &fakeBuilder{next: map[string]built{}}, out: &testenv.Log{TB: t}, files: files,
		f: fakeFinder{render.ComponentKafka: kafkaIP, render.ComponentH2: h2IP}}
	opts := Options{Log: log.New(h.out, true), Live: true, RolloutTimeout: time.Minute}
	h.l = newLoop(cfg, map[string]string{}, opts, &progress{log: opts.Log}, h.b, h.f)
	h.l.live, h.l.swapper, h.l.loader, h.l.deployer = h.c, h.c, h.c, h.c
	h.l.hashKey = []byte("a test key for the pods' config hash")
	h.l.ext[render.ComponentKafka] = kafkaIP
	h.l.ext[render.ComponentH2] = h2IP

	h.v1 = image(t, "sha256:base", "A=1", map[string]string{"app": "v1"})
	tm := image(t, "sha256:base", "A=1", map[string]string{"app": "tm"})
	h.b.next["account"] = built{Ref: refV1, Assembled: h.v1}
	h.b.next["transfermoney"] = built{Ref: refTM, Assembled: tm}
	if err := h.l.buildAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.l.parts = map[string]*build.Assembled{} // loaded by Up
	h.c.targets = map[string][]cluster.LiveTarget{
		"account":       {{Namespace: "t", Pod: "account-1", Container: "account", ContainerID: "c-account-1", Image: refV1}},
		"transfermoney": {{Namespace: "t", Pod: "transfermoney-1", Container: "transfermoney", ContainerID: "c-tm-1", Image: refTM}},
	}
	h.b.calls = nil
	return h
}

// save runs the loop on a save of service's files that builds img as ref.
func (h *harness) save(ctx context.Context, service, ref string, img *build.Assembled) {
	h.b.next[service] = built{Ref: ref, Assembled: img}
	h.l.handle(ctx, watch.Batch{Services: map[string][]string{service: {"app"}}}, []string{h.files})
}

func (h *harness) wantCalls(t *testing.T, want ...string) {
	t.Helper()
	if got := h.c.Calls(); !slices.Equal(got, want) {
		t.Errorf("calls:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func (h *harness) wantLines(t *testing.T, want []string, unwanted ...string) {
	t.Helper()
	out := h.out.String()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("the output lacks %q:\n%s", w, out)
		}
	}
	for _, u := range unwanted {
		if strings.Contains(out, u) {
			t.Errorf("the output has %q:\n%s", u, out)
		}
	}
}

func TestLoopFilesOnlyChangeIsWrittenIntoTheRunningContainers(t *testing.T) {
	h := newHarness(t)
	h.save(context.Background(), "account", refV2, image(t, "sha256:base", "A=1", map[string]string{"app": "v2"}))
	h.wantCalls(t,
		"LiveTargets t/account",
		`LiveUpdate account-1 port 8080 write [/app=v2] remove []`)
	h.wantLines(t, []string{"account: 1 files updated in 1 running containers", "account ✓", "(updated in place)"}, "✗")
	if got := h.l.content["c-account-1"]; got != refV2 {
		t.Errorf("the container is recorded as holding %q, want %s", got, refV2)
	}
	if !h.l.stale["account"] || h.l.images["account"] != refV2 {
		t.Errorf("after a live update: stale %v, image %s; want stale (not loaded yet) and %s", h.l.stale, h.l.images["account"], refV2)
	}

	// A later rollout loads the image that was only written into containers.
	h.c.calls = nil
	h.l.redeploy(context.Background(), []string{"transfermoney"}, "")
	if calls := h.c.Calls(); !slices.Contains(calls, "LoadImage "+refV2) {
		t.Errorf("a rollout after a live update did not load %s: %q", refV2, calls)
	}
}

func TestLoopSwapsWhenMoreThanFilesChanged(t *testing.T) {
	for _, tc := range []struct {
		name string
		img  func(t *testing.T) *build.Assembled
		why  string
	}{
		{"ENV changed", func(t *testing.T) *build.Assembled {
			return image(t, "sha256:base", "A=2", map[string]string{"app": "v2"})
		}, "the image's settings changed"},
		{"base changed", func(t *testing.T) *build.Assembled {
			return image(t, "sha256:newbase", "A=1", map[string]string{"app": "v2"})
		}, "the base image changed"},
		{"built by the engine", func(*testing.T) *build.Assembled { return nil }, "the image was built by the engine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			img := tc.img(t)
			h.save(context.Background(), "account", refV2, img)
			load := "LoadParts " + refV2
			calls := []string{"LiveTargets t/account"}
			if img == nil {
				load = "LoadImage " + refV2
				calls = nil // nothing to compare the running files with
			}
			h.wantCalls(t, append(calls, load, "SwapImage t/account "+refV2)...)
			h.wantLines(t, []string{"account: no live update: " + tc.why, "account: running " + refV2, "account ✓"}, "✗", "updated in place")
		})
	}
}

func TestLoopSwapsWhenPodsAreNotAllReady(t *testing.T) {
	h := newHarness(t)
	h.c.targetsErr = fmt.Errorf("%w: 0 pods of account run, 1 wanted", cluster.ErrNoLive)
	h.save(context.Background(), "account", refV2, image(t, "sha256:base", "A=1", map[string]string{"app": "v2"}))
	h.wantCalls(t, "LiveTargets t/account", "LoadParts "+refV2, "SwapImage t/account "+refV2)
	h.wantLines(t, []string{"account: no live update: cannot update in place: 0 pods", "account ✓"}, "✗")
}

func TestLoopSwapsWhenTheContainerHasNoSupervisor(t *testing.T) {
	h := newHarness(t)
	h.c.live = func(int) error { return fmt.Errorf("%w: no supervisor", cluster.ErrNoLive) }
	h.save(context.Background(), "account", refV2, image(t, "sha256:base", "A=1", map[string]string{"app": "v2"}))
	h.wantCalls(t,
		"LiveTargets t/account",
		`LiveUpdate account-1 port 8080 write [/app=v2] remove []`,
		"LoadParts "+refV2,
		"SwapImage t/account "+refV2)
	h.wantLines(t, []string{"account: swapping the image instead: cannot update in place: no supervisor", "account ✓"}, "✗")
}

func TestLoopRollsOutWhenTheImageCannotBeSwapped(t *testing.T) {
	h := newHarness(t)
	h.c.targetsErr = fmt.Errorf("%w: paused", cluster.ErrNoLive)
	h.c.swapErr = fmt.Errorf("%w: the Deployment is paused", cluster.ErrNoSwap)
	h.save(context.Background(), "account", refV2, image(t, "sha256:base", "A=1", map[string]string{"app": "v2"}))
	h.wantCalls(t,
		"LiveTargets t/account",
		"LoadParts "+refV2,
		"SwapImage t/account "+refV2,
		"LoadImage "+refV2,
		"Apply",
		"WaitRollout t/account")
	h.wantLines(t, []string{"account: rolling out instead: cannot swap images in place: the Deployment is paused", "account ready", "account ✓"}, "✗")
	if !appliedImage(h.c.applied[0], "account", refV2) {
		t.Errorf("the applied Deployment account does not run %s", refV2)
	}
}

func TestLoopPutsThePreviousFilesBackWhenTheNewVersionFails(t *testing.T) {
	for _, tc := range []struct {
		name      string
		putBack   error
		lines     []string
		wantImage string
		holds     string // what the loop believes the container holds
	}{
		{"put back", nil, []string{"✗ account: exited with code 3", "(the previous version is serving again; save again to retry)"}, refV1, refV1},
		{"put back fails", errors.New("node gone"), []string{"putting the previous version back into pod account-1 failed: node gone", "(save again to retry)"}, refV2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.c.live = func(n int) error {
				if n == 0 {
					return errors.New("exited with code 3")
				}
				return tc.putBack
			}
			h.save(context.Background(), "account", refV2, image(t, "sha256:base", "A=1", map[string]string{"app": "v2"}))
			h.wantCalls(t,
				"LiveTargets t/account",
				`LiveUpdate account-1 port 8080 write [/app=v2] remove []`,
				`LiveUpdate account-1 port 8080 write [/app=v1] remove []`)
			h.wantLines(t, append(tc.lines, "✗ account: updating 1 running containers in place"), "account ✓")
			if tc.putBack != nil && strings.Contains(h.out.String(), "serving again") {
				t.Error("a failed put-back was reported as the previous version serving again")
			}
			if got := h.l.images["account"]; got != tc.wantImage {
				t.Errorf("Images[account] = %s, want %s", got, tc.wantImage)
			}
			if got := h.l.content["c-account-1"]; got != tc.holds {
				t.Errorf("the container is recorded as holding %q, want %q", got, tc.holds)
			}
			if _, ok := h.l.parts["account"]; ok && tc.putBack == nil {
				t.Error("the failed image's parts are kept for loading")
			}
		})
	}
}

func TestLoopAfterPutBackSavingAgainRetries(t *testing.T) {
	h := newHarness(t)
	h.c.live = func(n int) error {
		if n == 0 {
			return errors.New("exited with code 3")
		}
		return nil
	}
	v2 := image(t, "sha256:base", "A=1", map[string]string{"app": "v2"})
	h.save(context.Background(), "account", refV2, v2)
	h.c.calls = nil
	h.save(context.Background(), "account", refV2, v2)
	h.wantCalls(t, "LiveTargets t/account", `LiveUpdate account-1 port 8080 write [/app=v2] remove []`)
}

func TestLoopNewServiceOrConfigChangeRollsOut(t *testing.T) {
	t.Run("new service", func(t *testing.T) {
		h := newHarness(t)
		cfg2, err := config.Load(writeProject(t, filepath.Dir(h.files), "new.yaml", "  ledger: {context: ./ledger, port: 8080}\n"))
		if err != nil {
			t.Fatal(err)
		}
		h.l.loadConfig = func(...string) (*config.Config, error) { return cfg2, nil }
		h.b.next["ledger"] = built{Ref: "devenv.local/t-ledger:v1", Assembled: image(t, "sha256:base", "A=1", map[string]string{"app": "l"})}
		restart := h.l.handle(context.Background(), watch.Batch{Config: true}, []string{h.files})
		if !restart {
			t.Error("a new service must restart the watcher")
		}
		h.wantCalls(t, "LoadImage devenv.local/t-ledger:v1", "Apply", "WaitRollout t/ledger")
		h.wantLines(t, []string{"ledger ready", "ledger ✓"}, "✗")
		if !slices.Equal(h.b.calls, []string{"Build ledger"}) {
			t.Errorf("builds %q, want only the new service", h.b.calls)
		}
	})
	t.Run("config change", func(t *testing.T) {
		h := newHarness(t)
		cfg2, err := config.Load(writeProject(t, filepath.Dir(h.files), "new.yaml", "    config: {greeting: hello}\n"))
		if err != nil {
			t.Fatal(err)
		}
		h.l.loadConfig = func(...string) (*config.Config, error) { return cfg2, nil }
		// transfermoney's image is on the nodes already: not loaded again.
		h.c.onNodes = map[string]bool{refTM: true}
		if restart := h.l.handle(context.Background(), watch.Batch{Config: true}, []string{h.files}); restart {
			t.Error("a config value change restarted the watcher")
		}
		calls := h.c.Calls()
		slices.Sort(calls[2:]) // the rollouts are waited for at once
		want := []string{"LoadImage " + refV1, "Apply", "WaitRollout t/account", "WaitRollout t/transfermoney"}
		if !slices.Equal(calls, want) {
			t.Errorf("calls %q, want %q", calls, want)
		}
		h.wantLines(t, []string{"✓ configuration applied"}, "✗")
		if !appliedConfig(h.c.applied[0], "transfermoney", "greeting", "hello") {
			t.Error("the applied ConfigMap transfermoney lacks greeting=hello")
		}
		if h.l.cfg != cfg2 {
			t.Error("the loop kept the old configuration")
		}
	})
	t.Run("broken config", func(t *testing.T) {
		h := newHarness(t)
		h.l.loadConfig = func(...string) (*config.Config, error) { return nil, errors.New("line 3: unknown field") }
		running := h.l.cfg
		h.l.handle(context.Background(), watch.Batch{Config: true}, []string{h.files})
		h.wantLines(t, []string{"✗ devenv.yaml: line 3: unknown field (keeping the running configuration)"})
		if h.l.cfg != running || len(h.b.calls) != 0 {
			t.Errorf("a broken config changed the configuration or built: %q", h.b.calls)
		}
	})
}

func TestLoopUnchangedAndBrokenBuilds(t *testing.T) {
	h := newHarness(t)
	h.save(context.Background(), "account", refV1, h.v1)
	h.wantCalls(t)
	h.wantLines(t, []string{"✓ account unchanged"}, "✗")

	h.b.err = errors.New("compile error")
	h.save(context.Background(), "account", refV2, nil)
	h.wantCalls(t)
	h.wantLines(t, []string{"✗ account: compile error\n  (the running version stays; save again to retry)"})
}

func TestLoopStoppedMidStepIsNotAFailure(t *testing.T) {
	t.Run("live update", func(t *testing.T) {
		h := newHarness(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		h.c.live = func(int) error { cancel(); return fmt.Errorf("exec: %w", context.Canceled) }
		h.save(ctx, "account", refV2, image(t, "sha256:base", "A=1", map[string]string{"app": "v2"}))
		h.wantCalls(t, "LiveTargets t/account", `LiveUpdate account-1 port 8080 write [/app=v2] remove []`)
		h.wantLines(t, []string{"• account: updating 1 running containers in place: stopped"}, "✗")
		if got, ok := h.l.content["c-account-1"]; ok {
			t.Errorf("after a stop the container is recorded as holding %s; what it holds is unknown", got)
		}
	})
	t.Run("rollout", func(t *testing.T) {
		h := newHarness(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		h.c.rollout = func(context.Context) error { cancel(); return fmt.Errorf("waiting: %w", context.Canceled) }
		h.l.loadConfig = func(...string) (*config.Config, error) { return h.l.cfg, nil }
		h.l.handle(ctx, watch.Batch{Config: true}, []string{h.files})
		h.wantLines(t, []string{"• account: rollout: stopped"}, "✗", "configuration applied")
	})
}

func TestLoopRepointsMovedExternalContainers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		found fakeFinder
		lines []string
		want  []string // addresses the applied endpoints hold; nil: no apply
	}{
		{"nothing moved", fakeFinder{render.ComponentKafka: kafkaIP, render.ComponentH2: h2IP}, nil, nil},
		{"H2 recreated", fakeFinder{render.ComponentKafka: kafkaIP, render.ComponentH2: "172.18.0.9"},
			[]string{"H2's address changed from 172.18.255.253 to 172.18.0.9: re-pointing the endpoints"}, []string{kafkaIP, "172.18.0.9"}},
		{"Kafka recreated", fakeFinder{render.ComponentKafka: "172.18.0.8", render.ComponentH2: h2IP},
			[]string{"Kafka's address changed from 172.18.255.254 to 172.18.0.8: re-pointing the endpoints"}, []string{"172.18.0.8", h2IP}},
		{"both", fakeFinder{render.ComponentKafka: "172.18.0.8", render.ComponentH2: "172.18.0.9"},
			[]string{"Kafka's address changed", "H2's address changed"}, []string{"172.18.0.8", "172.18.0.9"}},
		{"H2 stopped (no address)", fakeFinder{render.ComponentKafka: kafkaIP, render.ComponentH2: ""}, nil, nil},
		{"H2 gone", fakeFinder{render.ComponentKafka: kafkaIP}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.l.finder = tc.found
			h.l.repoint(context.Background())
			if tc.want == nil {
				h.wantCalls(t)
				h.wantLines(t, nil, "re-pointing")
				return
			}
			h.wantCalls(t, "Apply")
			h.wantLines(t, tc.lines, "✗")
			if got := endpointAddresses(t, h.c.applied[0]); !slices.Equal(got, tc.want) {
				t.Errorf("the applied EndpointSlices point at %q, want %q", got, tc.want)
			}
			// Checked again: nothing moved since.
			h.c.calls = nil
			h.l.repoint(context.Background())
			h.wantCalls(t)
		})
	}
}

// endpointAddresses lists the addresses of the EndpointSlices in objs, in order.
func endpointAddresses(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	var out []string
	for _, o := range objs {
		if o.GetKind() != "EndpointSlice" {
			continue
		}
		eps, _, _ := unstructured.NestedSlice(o.Object, "endpoints")
		for _, e := range eps {
			addrs, _, _ := unstructured.NestedStringSlice(e.(map[string]any), "addresses")
			out = append(out, addrs...)
		}
	}
	return out
}

// appliedConfig reports whether ConfigMap name in objs has key=value.
func appliedConfig(objs []*unstructured.Unstructured, name, key, value string) bool {
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" && o.GetName() == name {
			v, _, _ := unstructured.NestedString(o.Object, "data", key)
			return v == value
		}
	}
	return false
}

// appliedImage reports whether Deployment name in objs runs ref.
func appliedImage(objs []*unstructured.Unstructured, name, ref string) bool {
	for _, o := range objs {
		if o.GetKind() != "Deployment" || o.GetName() != name {
			continue
		}
		cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		for _, c := range cs {
			if img, _, _ := unstructured.NestedString(c.(map[string]any), "image"); img == ref {
				return true
			}
		}
	}
	return false
}

func TestBootWhile(t *testing.T) {
	booted := &cluster.Cluster{Name: "t"}
	errBoot, errWork := errors.New("kind failed"), errors.New("build failed")
	for _, tc := range []struct {
		name string
		// bootFirst: the cluster is up before work ends (reused).
		bootFirst bool
		// bootSoon: the cluster answers shortly after work ends (reused).
		bootSoon    bool
		bootErr     error
		workErr     error
		wantPreload bool
		wantErr     error
	}{
		{"cluster still booting: images preloaded meanwhile", false, false, nil, nil, true, nil},
		{"cluster already up: no preload", true, false, nil, nil, false, nil},
		{"cluster reused just after work: no preload", false, true, nil, nil, false, nil},
		{"work fails: no preload, work's error", false, false, nil, errWork, false, errWork},
		{"both fail: work's error first", false, false, errBoot, errWork, false, errWork},
		{"boot fails while preloading: preload stopped", false, false, errBoot, nil, true, errBoot},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			release := make(chan struct{}) // ends the boot
			bootDone := make(chan struct{})
			boot := func(context.Context) (*cluster.Cluster, error) {
				defer close(bootDone)
				<-release
				if tc.bootErr != nil {
					return nil, tc.bootErr
				}
				return booted, nil
			}
			work := func(context.Context) error {
				if tc.bootFirst {
					close(release)
					<-bootDone
					time.Sleep(10 * time.Millisecond) // the result is in the channel
				}
				if tc.bootSoon {
					time.AfterFunc(preloadGrace/5, func() { close(release) })
				}
				return tc.workErr
			}
			preloaded, stopped := false, false
			preload := func(ctx context.Context) {
				preloaded = true
				if tc.bootErr != nil {
					close(release)
					<-ctx.Done() // a failed boot stops the preload
					stopped = true
					return
				}
				close(release)
			}
			if !tc.bootFirst && !tc.bootSoon && !tc.wantPreload {
				close(release)
			}
			c, err := bootWhile(ctx, boot, work, preload)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if preloaded != tc.wantPreload {
				t.Errorf("preloaded = %v, want %v", preloaded, tc.wantPreload)
			}
			if tc.bootErr != nil && tc.wantPreload && !stopped {
				t.Error("the preload was not stopped when the boot failed")
			}
			if err == nil && c != booted {
				t.Errorf("cluster = %v, want the booted one", c)
			}
		})
	}
}

// TestLoopAssemblesQuickBuildsBeforeWatching: Up's quick builds return
// unchanged images without their parts; once watching starts the loop
// assembles them, so that the first save is still a live update.
func TestLoopAssemblesQuickBuildsBeforeWatching(t *testing.T) {
	h := newHarness(t)
	// As Up leaves it after quick builds: images known, no parts.
	h.l.known, h.l.recent = map[string]*build.Assembled{}, map[string][]string{}
	h.b.next["transfermoney"] = built{Ref: "devenv.local/t-transfermoney:changed", Assembled: image(t, "sha256:base", "A=1", map[string]string{"app": "x"})}
	h.l.assembleKnown(context.Background())
	if !slices.Equal(h.b.calls, []string{"Build account", "Build transfermoney"}) {
		t.Errorf("builds %q, want one per service", h.b.calls)
	}
	if h.l.known[refV1] != h.v1 {
		t.Error("the running account image was not remembered")
	}
	if _, ok := h.l.known["devenv.local/t-transfermoney:changed"]; ok || h.l.images["transfermoney"] != refTM {
		t.Error("an image that changed since up was taken for the running one")
	}
	h.b.calls = nil
	h.l.assembleKnown(context.Background())
	if slices.Contains(h.b.calls, "Build account") {
		t.Error("an image already known was assembled again")
	}
	h.save(context.Background(), "account", refV2, image(t, "sha256:base", "A=1", map[string]string{"app": "v2"}))
	h.wantCalls(t, "LiveTargets t/account", `LiveUpdate account-1 port 8080 write [/app=v2] remove []`)
}

func TestLoopSkipsApplyOnlyWhenTheClusterHoldsWhatItLastApplied(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	if err := h.l.apply(ctx); err != nil {
		t.Fatal(err)
	}
	if h.l.appliedHash == "" {
		t.Fatal("apply kept no hash of what it applied")
	}
	rec := upRecord{Applied: map[string]string{"Deployment/t/account": "g1"}, AppliedObjects: h.l.appliedHash}

	for _, tc := range []struct {
		name      string
		rec       upRecord
		unchanged bool
		want      []string
	}{
		{"same objects, same versions", rec, true, []string{"Unchanged"}},
		{"same objects, changed in the cluster", rec, false, []string{"Unchanged", "Apply"}},
		{"no record", upRecord{}, true, []string{"Apply"}},
		{"other objects", upRecord{Applied: rec.Applied, AppliedObjects: "another hash"}, true, []string{"Apply"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.c.calls, h.c.unchanged = nil, tc.unchanged
			if err := h.l.applyUnlessCurrent(ctx, tc.rec); err != nil {
				t.Fatal(err)
			}
			h.wantCalls(t, tc.want...)
		})
	}

	// A live update changes the images without an apply: the next up must
	// apply, though the record's versions still match the cluster.
	h.c.calls, h.c.unchanged = nil, true
	h.l.images["account"] = "devenv.local/t-account:0123456789ab"
	if err := h.l.applyUnlessCurrent(ctx, rec); err != nil {
		t.Fatal(err)
	}
	h.wantCalls(t, "Apply")
}

func TestLoopSaysWhenDockerOrTheClusterStopsAnswering(t *testing.T) {
	h := newHarness(t)
	var dockerErr, clusterErr error
	h.l.pingDocker = func(context.Context) error { return dockerErr }
	h.l.pingCluster = func(context.Context) error { return clusterErr }
	ctx := context.Background()
	steps := []struct {
		name            string
		docker, cluster error
		up              bool
		lines           []string // new lines in the output
	}{
		{"all answer", nil, nil, true, nil},
		{"Docker stops", errors.New("Cannot connect to the Docker daemon\nmore"), nil, false,
			[]string{"✗ Docker does not answer (Cannot connect to the Docker daemon): the containers and the cluster are out of reach"}},
		{"still down: said once", errors.New("Cannot connect to the Docker daemon"), nil, false, nil},
		{"Docker back, the node not yet", nil, errors.New("connection refused"), true,
			[]string{"✓ Docker answers again after ", "✗ the cluster's API server does not answer (connection refused)"}},
		{"the cluster back", nil, nil, true, []string{"✓ the cluster's API server answers again after "}},
		{"quiet again", nil, nil, true, nil},
	}
	seen := 0
	for _, st := range steps {
		dockerErr, clusterErr = st.docker, st.cluster
		if got := h.l.health(ctx); got != st.up {
			t.Errorf("%s: health = %v, want %v", st.name, got, st.up)
		}
		out := h.out.String()
		var lines []string
		for _, ln := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
			if strings.Contains(ln, "answer") {
				lines = append(lines, ln)
			}
		}
		added := lines[seen:]
		seen = len(lines)
		if len(added) != len(st.lines) {
			t.Errorf("%s: new lines %q, want %d like %q", st.name, added, len(st.lines), st.lines)
			continue
		}
		for i, want := range st.lines {
			if !strings.Contains(added[i], want) {
				t.Errorf("%s: line %q, want it to contain %q", st.name, added[i], want)
			}
		}
	}
}

func TestLoopResyncsContainersStartedAgainFromTheirImage(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.save(ctx, "account", refV2, image(t, "sha256:base", "A=1", map[string]string{"app": "v2"}))
	h.c.calls = nil

	// Nothing restarted: the containers hold the newest files.
	if !h.l.resync(ctx) {
		t.Error("resync not done with every pod ready")
	}
	h.wantCalls(t, "LiveTargets t/account", "LiveTargets t/transfermoney")

	// The node restarted: account's container is new, from the pod
	// spec's image (v1), without the files written into the old one.
	h.c.targets["account"] = []cluster.LiveTarget{{Namespace: "t", Pod: "account-1", Container: "account", ContainerID: "c-account-2", Image: refV1}}
	h.c.calls = nil
	if !h.l.resync(ctx) {
		t.Error("resync not done with every pod ready")
	}
	h.wantCalls(t, "LiveTargets t/account", "LiveTargets t/transfermoney",
		"LiveTargets t/account", `LiveUpdate account-1 port 8080 write [/app=v2] remove []`)
	h.wantLines(t, []string{"account: the running containers were started again from their image and lost the saved changes: updating them", "(updated in place)"})
	if got := h.l.content["c-account-2"]; got != refV2 {
		t.Errorf("the new container is recorded as holding %q, want %q", got, refV2)
	}

	// Pods not ready yet: not done, nothing written.
	h.c.targetsErr = fmt.Errorf("%w: pod account-1 is not ready", cluster.ErrNoLive)
	h.c.calls = nil
	if h.l.resync(ctx) {
		t.Error("resync done while the pods are not ready")
	}
	h.wantCalls(t, "LiveTargets t/account", "LiveTargets t/transfermoney")
}

func TestLoopChecksTheClusterWithoutDocker(t *testing.T) {
	// An existing cluster with no containers of devenv's: no Docker check,
	// the cluster's still.
	h := newHarness(t)
	h.l.pingCluster = func(context.Context) error { return errors.New("connection refused") }
	if !h.l.health(context.Background()) {
		t.Error("health = false without a Docker check")
	}
	h.wantLines(t, []string{"✗ the cluster's API server does not answer (connection refused)"}, "Docker")
}

// TestWaitRolloutsLooksAtAllFirst: the Deployments one look finds rolled
// out are ready at once; only the others are waited for.
func TestWaitRolloutsLooksAtAllFirst(t *testing.T) {
	h := newHarness(t)
	h.c.rolledOut = map[string]bool{"transfermoney": true}
	if err := h.l.waitRollouts(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	h.wantCalls(t, "WaitRollout t/account")
	h.wantLines(t, []string{"✓ transfermoney ready", "✓ account ready"})

	h = newHarness(t)
	h.c.rolledOut = map[string]bool{"account": true, "transfermoney": true}
	if err := h.l.waitRollouts(context.Background(), []string{"account"}); err != nil {
		t.Fatal(err)
	}
	h.wantCalls(t)
	h.wantLines(t, []string{"✓ account ready"}, "transfermoney")
}
