package devenv

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/kafka"
)

// fakeEvidence answers CollectArtifacts' questions from memory; a part
// whose error is set fails with it.
type fakeEvidence struct {
	report               *Report
	events               []cluster.Event
	pods                 map[string][]cluster.PodStatus // by selector
	logs                 map[string]string              // by pod/container[/previous]
	offsets              map[string][]kafka.PartitionOffset
	statusErr, eventsErr error
	podsErr              map[string]error // by selector
	logErr               map[string]error // by pod/container[/previous]
	kafkaErr, h2Err      error
	offsetsErr           error
	askedLogs            []string
}

func (f *fakeEvidence) Status(context.Context) (*Report, error) { return f.report, f.statusErr }

func (f *fakeEvidence) Events(_ context.Context, ns string) ([]cluster.Event, error) {
	if ns != "shop" {
		return nil, errors.New("wrong namespace " + ns)
	}
	return f.events, f.eventsErr
}

func (f *fakeEvidence) PodStatuses(_ context.Context, ns, selector string) ([]cluster.PodStatus, error) {
	if ns != "shop" {
		return nil, errors.New("wrong namespace " + ns)
	}
	return f.pods[selector], f.podsErr[selector]
}

func (f *fakeEvidence) CopyLogs(_ context.Context, _, pod, container string, previous bool, w io.Writer) error {
	key := pod + "/" + container
	if previous {
		key += "/previous"
	}
	f.askedLogs = append(f.askedLogs, key)
	_, _ = io.WriteString(w, f.logs[key])
	return f.logErr[key]
}

func (f *fakeEvidence) KafkaLogs(_ context.Context, tail int, w io.Writer) error {
	if tail != ContainerLogTail {
		return errors.New("wrong tail")
	}
	_, _ = io.WriteString(w, "kafka started\n")
	return f.kafkaErr
}

func (f *fakeEvidence) H2Logs(_ context.Context, _ int, w io.Writer) error {
	if f.h2Err != nil {
		return f.h2Err
	}
	_, err := io.WriteString(w, "TCP server running\n")
	return err
}

func (f *fakeEvidence) EndOffsets(context.Context) (map[string][]kafka.PartitionOffset, error) {
	return f.offsets, f.offsetsErr
}

func artifactsConfig(h2Mode string, kafkaOn bool) *config.Config {
	cfg := &config.Config{Name: "shop", Namespace: "shop", H2: config.H2{Mode: h2Mode},
		Services: []*config.Service{{Name: "api"}, {Name: "worker"}}}
	if kafkaOn {
		cfg.Kafka = &config.Kafka{}
	}
	return cfg
}

func running(name string) cluster.ContainerStatus {
	return cluster.ContainerStatus{Name: name, ID: "containerd://" + name, State: cluster.ContainerState{State: "running"}}
}

func goodEvidence() *fakeEvidence {
	crashed := running("api")
	crashed.RestartCount = 2
	crashed.State = cluster.ContainerState{State: "waiting", Reason: "CrashLoopBackOff"}
	crashed.Last = &cluster.ContainerState{State: "terminated", ExitCode: 1, Reason: "Error"}
	restartedRunning := running("api")
	restartedRunning.RestartCount = 1
	created := cluster.ContainerStatus{Name: "worker", State: cluster.ContainerState{State: "waiting", Reason: "ContainerCreating"}}
	return &fakeEvidence{
		report: &Report{Project: "shop", Namespace: "shop", Services: []ServiceStatus{{Name: "api", Message: "0 of 1 pods ready"}}},
		events: []cluster.Event{
			{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Type: "Normal", Reason: "Pulled", Object: "Pod/api-1", Message: "pulled", Count: 1},
			{Time: time.Date(2026, 1, 2, 3, 4, 9, 0, time.UTC), Type: "Warning", Reason: "BackOff", Object: "Pod/api-1", Message: "Back-off\nrestarting", Count: 3},
		},
		pods: map[string][]cluster.PodStatus{
			"app=api": {
				{Name: "api-1", Phase: "Running", Containers: []cluster.ContainerStatus{crashed}},
				{Name: "api-2", Phase: "Running", Containers: []cluster.ContainerStatus{restartedRunning, running("sidecar")},
					InitContainers: []cluster.ContainerStatus{{Name: "init", State: cluster.ContainerState{State: "terminated"}}}},
			},
			"app=worker": {{Name: "worker-1", Phase: "Pending", Containers: []cluster.ContainerStatus{created}}},
		},
		logs: map[string]string{
			"api-1/api/previous": "panic: boom\n",
			"api-2/api":          "listening\n",
			"api-2/api/previous": "first run\n",
			"api-2/sidecar":      "sidecar\n",
			"api-2/init":         "init done\n",
		},
		offsets: map[string][]kafka.PartitionOffset{"orders": {{Partition: 0, Offset: 3}}},
	}
}

// listDir returns the files under dir, relative, slash-separated, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func relAll(t *testing.T, dir string, paths []string) []string {
	t.Helper()
	var out []string
	for _, p := range paths {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, filepath.ToSlash(rel))
	}
	slices.Sort(out)
	return out
}

func readArtifact(t *testing.T, dir, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCollectArtifacts(t *testing.T) {
	dir := t.TempDir()
	src := goodEvidence()
	written, err := collectArtifacts(context.Background(), artifactsConfig(config.H2Server, true), src, dir, log.Nop())
	if err != nil {
		t.Fatalf("collectArtifacts = %v", err)
	}
	want := []string{
		"events.txt",
		"h2.log",
		"kafka.log",
		"pods.json",
		"pods/api/api-1.api.previous.log",
		"pods/api/api-2.api.log",
		"pods/api/api-2.api.previous.log",
		"pods/api/api-2.init.log",
		"pods/api/api-2.sidecar.log",
		"status.json",
		"topics.json",
	}
	if got := listDir(t, dir); !slices.Equal(got, want) {
		t.Errorf("files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := relAll(t, dir, written); !slices.Equal(got, want) {
		t.Errorf("written = %q, want %q", got, want)
	}
	// The waiting container that never ran has no current log asked for;
	// the one in CrashLoopBackOff only its previous one.
	if slices.Contains(src.askedLogs, "worker-1/worker") || slices.Contains(src.askedLogs, "api-1/api") {
		t.Errorf("asked for the logs of containers that have not run: %q", src.askedLogs)
	}
	if info, err := os.Stat(filepath.Join(dir, "pods", "worker")); err != nil || !info.IsDir() {
		t.Errorf("pods/worker: %v, want a folder for the service even without logs", err)
	}

	if got := readArtifact(t, dir, "pods/api/api-1.api.previous.log"); got != "panic: boom\n" {
		t.Errorf("previous log = %q", got)
	}
	events := strings.Split(strings.TrimSpace(readArtifact(t, dir, "events.txt")), "\n")
	if len(events) != 3 || !strings.HasPrefix(events[0], "LAST SEEN") ||
		!strings.HasPrefix(events[1], "2026-01-02T03:04:05Z") ||
		!strings.Contains(events[2], "Warning") || !strings.HasSuffix(events[2], "Pod/api-1  Back-off restarting (x3)") {
		t.Errorf("events.txt:\n%s", strings.Join(events, "\n"))
	}

	var status Report
	if err := json.Unmarshal([]byte(readArtifact(t, dir, "status.json")), &status); err != nil || status.Services[0].Message != "0 of 1 pods ready" {
		t.Errorf("status.json: %+v, %v", status, err)
	}
	if s := readArtifact(t, dir, "status.json"); !strings.Contains(s, "\n  \"project\": \"shop\"") || !strings.HasSuffix(s, "}\n") {
		t.Errorf("status.json is not indented as devenv status -o json prints it:\n%s", s)
	}
	var pods map[string][]cluster.PodStatus
	if err := json.Unmarshal([]byte(readArtifact(t, dir, "pods.json")), &pods); err != nil ||
		len(pods["api"]) != 2 || pods["api"][0].Containers[0].RestartCount != 2 || pods["worker"][0].Containers[0].State.Reason != "ContainerCreating" {
		t.Errorf("pods.json: %+v, %v", pods, err)
	}
	var offs map[string][]kafka.PartitionOffset
	if err := json.Unmarshal([]byte(readArtifact(t, dir, "topics.json")), &offs); err != nil || offs["orders"][0].Offset != 3 {
		t.Errorf("topics.json: %+v, %v", offs, err)
	}
}

func TestCollectArtifactsFailures(t *testing.T) {
	dir := t.TempDir()
	src := goodEvidence()
	src.statusErr = errors.New("no Docker engine answers")
	src.eventsErr = errors.New("connection refused")
	src.podsErr = map[string]error{"app=worker": errors.New("forbidden")}
	src.logErr = map[string]error{
		"api-2/api":          errors.New("stream reset"), // after writing a part
		"api-1/api/previous": errors.New("previous terminated container not found"),
	}
	src.logs["api-1/api/previous"] = ""
	src.h2Err = errors.New("project shop has no H2 container")
	src.offsetsErr = errors.New("kafka container devenv-shop-kafka is not running")
	written, err := collectArtifacts(context.Background(), artifactsConfig(config.H2Server, true), src, dir, log.Nop())
	if err == nil {
		t.Fatal("collectArtifacts reported no error")
	}
	for _, want := range []string{"no Docker engine answers", "connection refused", "forbidden", "stream reset",
		"previous terminated container not found", "no H2 container", "not running"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q:\n%v", want, err)
		}
	}
	want := []string{
		"events.error.txt",
		"h2.error.txt",
		"kafka.log",
		"pods.error.txt",
		"pods.json", // the services that answered
		"pods/api/api-1.api.previous.error.txt",
		"pods/api/api-2.api.error.txt",
		"pods/api/api-2.api.log", // what came before the failure
		"pods/api/api-2.api.previous.log",
		"pods/api/api-2.init.log",
		"pods/api/api-2.sidecar.log",
		"status.error.txt",
		"topics.error.txt",
	}
	if got := listDir(t, dir); !slices.Equal(got, want) {
		t.Errorf("files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := relAll(t, dir, written); !slices.Equal(got, want) {
		t.Errorf("written = %q, want %q", got, want)
	}
	for file, reason := range map[string]string{
		"status.error.txt":                      "no Docker engine answers",
		"pods.error.txt":                        "service worker: forbidden",
		"pods/api/api-1.api.previous.error.txt": "previous terminated container not found",
		"topics.error.txt":                      "not running",
	} {
		if got := readArtifact(t, dir, file); !strings.Contains(got, reason) {
			t.Errorf("%s = %q, want the reason %q", file, got, reason)
		}
	}
	var pods map[string][]cluster.PodStatus
	if err := json.Unmarshal([]byte(readArtifact(t, dir, "pods.json")), &pods); err != nil || len(pods["api"]) != 2 || pods["worker"] != nil {
		t.Errorf("pods.json with worker failing: %+v, %v", pods, err)
	}

	// Collecting again into the folder, with every part answering, leaves
	// no error file of the first collection behind.
	if _, err := collectArtifacts(context.Background(), artifactsConfig(config.H2Server, true), goodEvidence(), dir, log.Nop()); err != nil {
		t.Fatal(err)
	}
	if got := slices.DeleteFunc(listDir(t, dir), func(f string) bool { return !strings.HasSuffix(f, ".error.txt") }); len(got) != 0 {
		t.Errorf("error files left by the first collection: %q", got)
	}
	if got := readArtifact(t, dir, "pods/api/api-1.api.previous.log"); got != "panic: boom\n" {
		t.Errorf("previous log after the second collection = %q", got)
	}
}

func TestCollectArtifactsOnlyWhatTheProjectHas(t *testing.T) {
	dir := t.TempDir()
	src := goodEvidence()
	src.pods = nil
	cfg := artifactsConfig(config.H2Memory, false)
	if _, err := collectArtifacts(context.Background(), cfg, src, dir, log.Nop()); err != nil {
		t.Fatal(err)
	}
	want := []string{"events.txt", "pods.json", "status.json"}
	if got := listDir(t, dir); !slices.Equal(got, want) {
		t.Errorf("files without Kafka, H2 server or pods: %q, want %q", got, want)
	}
}

func TestArtifactPath(t *testing.T) {
	a := &artifactDir{dir: "/out"}
	for _, tc := range []struct {
		rel string
		ok  bool
	}{
		{"events.txt", true},
		{"pods/api/api-5d9c7-x2x4z.api.log", true},
		{"pods/../../etc/passwd", false},
		{"pods/api/../../x.log", false},
		{"pods/../x.log", false},
		{"/etc/passwd", false},
		{"pods//x.log", false},
		{"pods/./x.log", false},
		{"pods/a\\b/x.log", false},
		{"a\x00b", false},
	} {
		got, err := a.path(tc.rel)
		if (err == nil) != tc.ok {
			t.Errorf("path(%q) = %q, %v; want ok %v", tc.rel, got, err, tc.ok)
		}
		if err == nil && !strings.HasPrefix(got, "/out/") {
			t.Errorf("path(%q) = %q, outside the folder", tc.rel, got)
		}
	}
}

func TestCollectArtifactsFolderError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A folder that cannot be made fails before anything is asked.
	written, err := CollectArtifacts(context.Background(), artifactsConfig(config.H2Memory, false), Options{}, filepath.Join(file, "artifacts"))
	if err == nil || !strings.Contains(err.Error(), "creating the artifacts folder") || len(written) != 0 {
		t.Errorf("CollectArtifacts under a file = %q, %v; want the folder's error", written, err)
	}
}
