package build

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
	"google.golang.org/protobuf/encoding/protowire"
)

var update = flag.Bool("update", false, "rewrite the BuildKit stream fixtures in testdata")

func TestChooseBuilder(t *testing.T) {
	for _, tc := range []struct {
		name string
		ping client.PingResult
		want build.BuilderVersion
		old  bool
	}{
		{"docker 20.10, no features", client.PingResult{APIVersion: "1.41", OSType: "linux"}, build.BuilderBuildKit, true},
		{"docker 20.10, features.buildkit", client.PingResult{APIVersion: "1.41", OSType: "linux", BuilderVersion: "2"}, build.BuilderBuildKit, true},
		{"docker 20.10, buildkit off", client.PingResult{APIVersion: "1.41", OSType: "linux", BuilderVersion: "1"}, build.BuilderV1, true},
		{"docker 23", client.PingResult{APIVersion: "1.42", OSType: "linux", BuilderVersion: "2"}, build.BuilderBuildKit, false},
		{"docker 29", client.PingResult{APIVersion: "1.52", OSType: "linux", BuilderVersion: "2"}, build.BuilderBuildKit, false},
		{"docker 29, buildkit off", client.PingResult{APIVersion: "1.52", OSType: "linux", BuilderVersion: "1"}, build.BuilderV1, true},
		{"windows", client.PingResult{APIVersion: "1.52", OSType: "windows", BuilderVersion: "1"}, build.BuilderV1, true},
		{"windows, no header", client.PingResult{APIVersion: "1.41", OSType: "windows"}, build.BuilderV1, true},
		{"docker 18.06", client.PingResult{APIVersion: "1.38", OSType: "linux"}, build.BuilderV1, true},
		{"docker 18.09", client.PingResult{APIVersion: "1.39", OSType: "linux"}, build.BuilderBuildKit, true},
		{"no version", client.PingResult{}, build.BuilderV1, true},
		{"api 2.0", client.PingResult{APIVersion: "2.0", OSType: "linux"}, build.BuilderBuildKit, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := chooseBuilder(tc.ping)
			if got.version != tc.want || got.oldFrontend != tc.old || got.why == "" {
				t.Errorf("chooseBuilder(%+v) = %+v, want version %s, old frontend %v", tc.ping, got, tc.want, tc.old)
			}
		})
	}
}

func TestRefusedBuildKit(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{errors.New(`Error response from daemon: buildkit not supported by daemon`), true},
		{errors.New(`Error response from daemon: invalid version "2"`), true},
		{cerrdefs.ErrInvalidArgument.WithMessage("bad option"), true},
		{cerrdefs.ErrNotImplemented, true},
		{errors.New(`Error response from daemon: failed to solve with frontend dockerfile.v0: dockerfile parse error line 2`), false},
		{errors.New("connection reset by peer"), false},
	} {
		if got := refusedBuildKit(tc.err); got != tc.want {
			t.Errorf("refusedBuildKit(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// The fixtures are the engine's answer to a BuildKit build, message for
// message as Docker 20.10 sends it (aux "moby.buildkit.trace" carrying a
// StatusResponse, then "moby.image.id", or an error message). They are
// written by fixtureStreams with -update from the field layout of
// BuildKit's control.proto.
const fixtureDockerfile = "FROM devenv.local/jre:17\nCOPY --chmod=0755 run.sh /run.sh\nRUN /run.sh && \\\n    echo done\nCMD [\"/run.sh\"]\n"

func TestReadBuildBuildKitOK(t *testing.T) {
	stream := fixture(t, "buildkit-ok.jsonl")
	var out bytes.Buffer
	id, err := readBuild(bytes.NewReader(stream), &out, stepLines{sent: []byte(fixtureDockerfile), orig: []byte(fixtureDockerfile), name: "Dockerfile"})
	if err != nil {
		t.Fatal(err)
	}
	if id != "sha256:"+strings.Repeat("ab", 32) {
		t.Errorf("id = %q", id)
	}
	for _, want := range []string{
		"#1 [internal] load build definition from Dockerfile\n",
		"#3 [1/3] FROM devenv.local/jre:17\n#3 CACHED\n",
		"#4 [2/3] COPY --chmod=0755 run.sh /run.sh\n",
		"#5 [3/3] RUN /run.sh && echo done\n#5 hello from run.sh\n#5 done\n#5 DONE 1.5s\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestReadBuildBuildKitFailure(t *testing.T) {
	stream := fixture(t, "buildkit-fail.jsonl")
	var out bytes.Buffer
	_, err := readBuild(bytes.NewReader(stream), &out, stepLines{sent: []byte(fixtureDockerfile), orig: []byte(fixtureDockerfile), name: "/src/Dockerfile"})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		`executor failed running [/bin/sh -c /run.sh && echo done]: exit code: 3`,
		"at /src/Dockerfile:3: RUN /run.sh && echo done",
		"last output:\n  hello from run.sh\n  no such thing",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if !strings.Contains(out.String(), "#5 ERROR: executor failed") {
		t.Errorf("output lacks the failed step:\n%s", out.String())
	}
}

func TestReadBuildBuildKitCorrupt(t *testing.T) {
	bad, _ := json.Marshal(map[string]any{"id": "moby.buildkit.trace", "aux": []byte{0x0a, 0xff}})
	if _, err := readBuild(bytes.NewReader(bad), nil, stepLines{}); err == nil || !strings.Contains(err.Error(), "BuildKit's progress") {
		t.Errorf("a truncated trace: err = %v", err)
	}
}

func TestStepLinesFind(t *testing.T) {
	df := "ARG V=1\nFROM scratch AS a\nCOPY x /x\nFROM a\nENV N=$V\nRUN echo $N \\\n  && true\nRUN echo other\n"
	for _, tc := range []struct {
		step string
		line int
	}{
		{"RUN echo other", 8},
		{"RUN echo 1 && true", 6},
		{"COPY x /x", 3},
		{"WORKDIR /", 0},
	} {
		if got, _ := (stepLines{sent: []byte(df), orig: []byte(df)}).find(tc.step); got != tc.line {
			t.Errorf("find(%q) = line %d, want %d", tc.step, got, tc.line)
		}
	}
}

func TestRewriteRunHeredocs(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"none", "FROM x\nRUN true\n", ""},
		{"simple",
			"FROM x\nRUN <<EOF\nset -e\necho hi > /hi\nEOF\nCMD [\"x\"]\n",
			"FROM x\nRUN [\"/bin/sh\",\"-c\",\"set -e\\necho hi \\u003e /hi\\n\"]\n\n\n\nCMD [\"x\"]\n"},
		{"flags and shell",
			"FROM x AS base\nSHELL [\"/bin/bash\", \"-eo\", \"pipefail\", \"-c\"]\nFROM base\nRUN --network=none <<EOF\ntrue\nEOF\n",
			"FROM x AS base\nSHELL [\"/bin/bash\", \"-eo\", \"pipefail\", \"-c\"]\nFROM base\nRUN --network=none [\"/bin/bash\",\"-eo\",\"pipefail\",\"-c\",\"true\\n\"]\n\n\n"},
		{"a command reading heredocs",
			"FROM x\nRUN cat <<A > /a\nfirst\nA\n",
			"FROM x\nRUN [\"/bin/sh\",\"-c\",\"cat \\u003c\\u003cA \\u003e /a\\nfirst\\nA\"]\n\n\n"},
		{"chomp",
			"FROM x\nRUN <<-EOF\n\techo tab\n\tEOF\n",
			"FROM x\nRUN [\"/bin/sh\",\"-c\",\"echo tab\\n\"]\n\n\n"},
		{"shebang left alone", "FROM x\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n", ""},
		{"syntax directive left alone", "# syntax=docker/dockerfile:1\nFROM x\nRUN <<EOF\ntrue\nEOF\n", ""},
		{"copy heredoc left alone", "FROM x\nCOPY <<EOF /f\nhi\nEOF\n", ""},
		{"new stage resets the shell",
			"FROM x\nSHELL [\"/bin/bash\", \"-c\"]\nFROM y\nRUN <<EOF\ntrue\nEOF\n",
			"FROM x\nSHELL [\"/bin/bash\", \"-c\"]\nFROM y\nRUN [\"/bin/sh\",\"-c\",\"true\\n\"]\n\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := rewriteRunHeredocs([]byte(tc.in))
			if tc.want == "" {
				if changed || string(got) != tc.in {
					t.Errorf("changed to:\n%s", got)
				}
				return
			}
			if !changed || string(got) != tc.want {
				t.Errorf("got (changed %v):\n%q\nwant:\n%q", changed, got, tc.want)
			}
			if strings.Count(string(got), "\n") != strings.Count(tc.in, "\n") {
				t.Errorf("line count changed")
			}
		})
	}
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	file := filepath.Join("testdata", name)
	if *update {
		streams := fixtureStreams()
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, streams[name], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update writes it)", err, t.Name())
	}
	return b
}

// The encoders below write StatusResponse messages by field number
// (BuildKit api/services/control/control.proto).

type pbVertex struct {
	digest, name, err string
	cached            bool
	started, done     time.Time
}

type pbLog struct {
	vertex, msg string
}

func encTime(t time.Time) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(t.Unix()))
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(t.Nanosecond()))
}

func encStatus(vs []pbVertex, logs []pbLog) []byte {
	var b []byte
	for _, v := range vs {
		var m []byte
		m = protowire.AppendTag(m, 1, protowire.BytesType)
		m = protowire.AppendString(m, v.digest)
		m = protowire.AppendTag(m, 3, protowire.BytesType)
		m = protowire.AppendString(m, v.name)
		if v.cached {
			m = protowire.AppendTag(m, 4, protowire.VarintType)
			m = protowire.AppendVarint(m, 1)
		}
		if !v.started.IsZero() {
			m = protowire.AppendTag(m, 5, protowire.BytesType)
			m = protowire.AppendBytes(m, encTime(v.started))
		}
		if !v.done.IsZero() {
			m = protowire.AppendTag(m, 6, protowire.BytesType)
			m = protowire.AppendBytes(m, encTime(v.done))
		}
		if v.err != "" {
			m = protowire.AppendTag(m, 7, protowire.BytesType)
			m = protowire.AppendString(m, v.err)
		}
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, m)
	}
	for _, l := range logs {
		var m []byte
		m = protowire.AppendTag(m, 1, protowire.BytesType)
		m = protowire.AppendString(m, l.vertex)
		m = protowire.AppendTag(m, 2, protowire.BytesType)
		m = protowire.AppendBytes(m, encTime(time.Unix(1700000000, 0)))
		m = protowire.AppendTag(m, 3, protowire.VarintType)
		m = protowire.AppendVarint(m, 1)
		m = protowire.AppendTag(m, 4, protowire.BytesType)
		m = protowire.AppendBytes(m, []byte(l.msg))
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, m)
	}
	return b
}

func traceLine(pb []byte) string {
	return fmt.Sprintf(`{"id":"moby.buildkit.trace","aux":%q}`, base64.StdEncoding.EncodeToString(pb)) + "\n"
}

func fixtureStreams() map[string][]byte {
	t0 := time.Unix(1700000000, 0)
	d := func(n int) string { return fmt.Sprintf("sha256:%064d", n) }
	load := []pbVertex{
		{digest: d(1), name: "[internal] load build definition from Dockerfile", started: t0},
		{digest: d(2), name: "[internal] load .dockerignore", started: t0},
	}
	loaded := []pbVertex{
		{digest: d(1), name: "[internal] load build definition from Dockerfile", started: t0, done: t0.Add(10 * time.Millisecond)},
		{digest: d(2), name: "[internal] load .dockerignore", started: t0, done: t0.Add(10 * time.Millisecond)},
	}
	from := pbVertex{digest: d(3), name: "[1/3] FROM devenv.local/jre:17", cached: true, started: t0, done: t0}
	copyStep := pbVertex{digest: d(4), name: "[2/3] COPY --chmod=0755 run.sh /run.sh", started: t0.Add(time.Second)}
	copied := copyStep
	copied.done = t0.Add(1200 * time.Millisecond)
	run := pbVertex{digest: d(5), name: "[3/3] RUN /run.sh && echo done", started: t0.Add(2 * time.Second)}
	common := traceLine(encStatus(load, nil)) + traceLine(encStatus(loaded, nil)) +
		traceLine(encStatus([]pbVertex{from, copyStep}, nil)) + traceLine(encStatus([]pbVertex{copied, run}, nil)) +
		traceLine(encStatus(nil, []pbLog{{d(5), "hello from "}, {d(5), "run.sh\n"}}))
	ran := run
	ran.done = t0.Add(3500 * time.Millisecond)
	ok := common + traceLine(encStatus(nil, []pbLog{{d(5), "done\n"}})) + traceLine(encStatus([]pbVertex{ran}, nil)) +
		`{"aux":{"ID":"sha256:` + strings.Repeat("ab", 32) + `"},"id":"moby.image.id"}` + "\n"
	failed := run
	failed.done = t0.Add(2500 * time.Millisecond)
	failed.err = "executor failed running [/bin/sh -c /run.sh && echo done]: exit code: 3"
	fail := common + traceLine(encStatus(nil, []pbLog{{d(5), "no such thing"}})) + traceLine(encStatus([]pbVertex{failed}, nil)) +
		`{"errorDetail":{"message":"executor failed running [/bin/sh -c /run.sh \u0026\u0026 echo done]: exit code: 3"},"error":"executor failed running [/bin/sh -c /run.sh \u0026\u0026 echo done]: exit code: 3"}` + "\n"
	return map[string][]byte{"buildkit-ok.jsonl": []byte(ok), "buildkit-fail.jsonl": []byte(fail)}
}
