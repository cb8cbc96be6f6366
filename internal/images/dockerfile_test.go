package images

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// fakeResolve stands devenv.local/jre:17 in for eclipse-temurin and openjdk
// images, keeps every other image, and fails for "nosuch/*".
func fakeResolve(calls *[]string) func(string) (string, error) {
	return func(ref string) (string, error) {
		*calls = append(*calls, ref)
		switch {
		case strings.HasPrefix(ref, "eclipse-temurin:"), strings.HasPrefix(ref, "openjdk:"):
			return "devenv.local/jre:17", nil
		case strings.HasPrefix(ref, "nosuch/"):
			return "", fmt.Errorf("%w: %s", ErrNoImage, ref)
		}
		return ref, nil
	}
}

func TestRewriteDockerfile(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		args       map[string]string
		want       string
		wantArgs   map[string]string
		wantCalls  []string
		wantNotes  int
		wantErrHas string
	}{
		{
			name:      "plain FROM is replaced in the text",
			in:        "FROM eclipse-temurin:17-jre\nCOPY app.jar /app.jar\nENTRYPOINT [\"java\",\"-jar\",\"/app.jar\"]\n",
			want:      "FROM devenv.local/jre:17\nCOPY app.jar /app.jar\nENTRYPOINT [\"java\",\"-jar\",\"/app.jar\"]\n",
			wantCalls: []string{"eclipse-temurin:17-jre"},
			wantNotes: 1,
		},
		{
			name:      "lower-case keyword, platform flag and stage name",
			in:        "from --platform=linux/amd64 openjdk:15-jre AS run\nRUN true",
			want:      "from --platform=linux/amd64 devenv.local/jre:17 AS run\nRUN true",
			wantCalls: []string{"openjdk:15-jre"},
			wantNotes: 1,
		},
		{
			name:      "present image unchanged",
			in:        "FROM busybox:1.36\n",
			want:      "FROM busybox:1.36\n",
			wantCalls: []string{"busybox:1.36"},
		},
		{
			name:      "ARG default names the image: the arg is overridden, text kept",
			in:        "ARG JRE_IMAGE=eclipse-temurin:17-jre\nFROM ${JRE_IMAGE}\nCOPY a /a\n",
			want:      "ARG JRE_IMAGE=eclipse-temurin:17-jre\nFROM ${JRE_IMAGE}\nCOPY a /a\n",
			wantArgs:  map[string]string{"JRE_IMAGE": "devenv.local/jre:17"},
			wantCalls: []string{"eclipse-temurin:17-jre"},
			wantNotes: 1,
		},
		{
			name:      "build arg beats the ARG default",
			in:        "ARG BASE=busybox\nFROM $BASE\n",
			args:      map[string]string{"BASE": "openjdk:17-jre-slim", "OTHER": "x"},
			want:      "ARG BASE=busybox\nFROM $BASE\n",
			wantArgs:  map[string]string{"BASE": "devenv.local/jre:17", "OTHER": "x"},
			wantCalls: []string{"openjdk:17-jre-slim"},
			wantNotes: 1,
		},
		{
			name:      "composed reference is rewritten literally",
			in:        "ARG REPO=eclipse-temurin\nARG TAG=17-jre\nFROM ${REPO}:${TAG}\n",
			want:      "ARG REPO=eclipse-temurin\nARG TAG=17-jre\nFROM devenv.local/jre:17\n",
			wantCalls: []string{"eclipse-temurin:17-jre"},
			wantNotes: 1,
		},
		{
			name:      "default modifier",
			in:        "ARG V\nFROM openjdk:${V:-17}-jre\n",
			want:      "ARG V\nFROM devenv.local/jre:17\n",
			wantCalls: []string{"openjdk:17-jre"},
			wantNotes: 1,
		},
		{
			name: "multi-stage: stage names and scratch are not resolved",
			in: "FROM golang:1.22 AS build\nRUN go build -o /app .\n" +
				"FROM build AS test\nRUN go test ./...\n" +
				"FROM scratch\nCOPY --from=build /app /app\nCOPY --from=0 /x /x\n",
			want: "FROM golang:1.22 AS build\nRUN go build -o /app .\n" +
				"FROM build AS test\nRUN go test ./...\n" +
				"FROM scratch\nCOPY --from=build /app /app\nCOPY --from=0 /x /x\n",
			wantCalls: []string{"golang:1.22"},
		},
		{
			name:      "COPY --from an image",
			in:        "FROM scratch\nCOPY --from=openjdk:17-jre /opt /opt\n",
			want:      "FROM scratch\nCOPY --from=devenv.local/jre:17 /opt /opt\n",
			wantCalls: []string{"openjdk:17-jre"},
			wantNotes: 1,
		},
		{
			name:      "continued FROM becomes one line, comments kept",
			in:        "# syntax comment\nFROM \\\n  eclipse-temurin:17-jre \\\n  AS run\nRUN true\n",
			want:      "# syntax comment\nFROM devenv.local/jre:17 AS run\nRUN true\n",
			wantCalls: []string{"eclipse-temurin:17-jre"},
			wantNotes: 1,
		},
		{
			name:      "same image resolved once",
			in:        "FROM eclipse-temurin:17-jre AS a\nFROM eclipse-temurin:17-jre AS b\n",
			want:      "FROM devenv.local/jre:17 AS a\nFROM devenv.local/jre:17 AS b\n",
			wantCalls: []string{"eclipse-temurin:17-jre"},
			wantNotes: 2,
		},
		{
			name:       "unresolvable image names the line",
			in:         "RUN true\nFROM nosuch/thing:1\n",
			wantErrHas: "Dockerfile line 2: image not available: nosuch/thing:1",
			wantCalls:  []string{"nosuch/thing:1"},
		},
		{
			name:       "undeclared variable",
			in:         "FROM ${NOPE}\n",
			wantErrHas: "line 1: FROM ${NOPE} uses $NOPE, which no ARG before the first FROM declares",
		},
		{
			name:       "ARG without value",
			in:         "ARG IMG\nFROM $IMG\n",
			wantErrHas: "line 2: FROM $IMG names no image",
		},
		{
			name:       "FROM without image",
			in:         "FROM --platform=linux/amd64\n",
			wantErrHas: "line 1: FROM names no image",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls []string
			got, args, notes, err := RewriteDockerfile([]byte(tc.in), tc.args, fakeResolve(&calls))
			if !slices.Equal(calls, tc.wantCalls) {
				t.Errorf("resolve calls = %q, want %q", calls, tc.wantCalls)
			}
			if tc.wantErrHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrHas) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErrHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("Dockerfile =\n%s\nwant\n%s", got, tc.want)
			}
			wantArgs := tc.wantArgs
			if wantArgs == nil {
				wantArgs = tc.args
			}
			if wantArgs == nil {
				wantArgs = map[string]string{}
			}
			if !maps.Equal(args, wantArgs) {
				t.Errorf("args = %v, want %v", args, wantArgs)
			}
			if len(notes) != tc.wantNotes {
				t.Errorf("notes = %q, want %d", notes, tc.wantNotes)
			}
		})
	}
}

func TestRewriteDockerfileKeepsCallerArgs(t *testing.T) {
	in := map[string]string{"BASE": "openjdk:17"}
	var calls []string
	_, out, _, err := RewriteDockerfile([]byte("ARG BASE\nFROM $BASE\n"), in, fakeResolve(&calls))
	if err != nil {
		t.Fatal(err)
	}
	if in["BASE"] != "openjdk:17" || out["BASE"] != "devenv.local/jre:17" {
		t.Fatalf("caller's args = %v, new args = %v", in, out)
	}
}

func TestRewriteDockerfileErrNoImage(t *testing.T) {
	var calls []string
	_, _, _, err := RewriteDockerfile([]byte("FROM nosuch/x\n"), nil, fakeResolve(&calls))
	if !errors.Is(err, ErrNoImage) {
		t.Fatalf("err = %v, want ErrNoImage", err)
	}
}

// TestRewriteDockerfileReadsAsDocker pins the places where the stand-in
// rewrite and `docker build` used to disagree, and that the rest of the
// user's file is kept byte for byte.
func TestRewriteDockerfileReadsAsDocker(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		args      map[string]string
		want      string
		wantArgs  map[string]string
		wantCalls []string
	}{
		{
			name:      "escape directive: a trailing backslash does not continue",
			in:        "# escape=`\nFROM busybox AS a\nRUN echo C:\\\nFROM openjdk:17-jre\n",
			want:      "# escape=`\nFROM busybox AS a\nRUN echo C:\\\nFROM devenv.local/jre:17\n",
			wantCalls: []string{"busybox", "openjdk:17-jre"},
		},
		{
			name:      "escape directive: backtick continues, the image is replaced where it stands",
			in:        "# escape=`\nFROM openjdk:17-jre `\n  AS run\n",
			want:      "# escape=`\nFROM devenv.local/jre:17 `\n  AS run\n",
			wantCalls: []string{"openjdk:17-jre"},
		},
		{
			name:      "several ARGs on one line",
			in:        "ARG A=alpine B=2\nFROM $A\n",
			want:      "ARG A=alpine B=2\nFROM $A\n",
			wantCalls: []string{"alpine"},
		},
		{
			name:      "several ARGs on one line, stand-in through the build arg",
			in:        "ARG A=openjdk:17-jre B=2\nFROM ${A}\n",
			want:      "ARG A=openjdk:17-jre B=2\nFROM ${A}\n",
			wantArgs:  map[string]string{"A": "devenv.local/jre:17"},
			wantCalls: []string{"openjdk:17-jre"},
		},
		{
			name:      "quoted ARG default",
			in:        "ARG IMG=\"openjdk:17-jre\"\nFROM $IMG\n",
			want:      "ARG IMG=\"openjdk:17-jre\"\nFROM $IMG\n",
			wantArgs:  map[string]string{"IMG": "devenv.local/jre:17"},
			wantCalls: []string{"openjdk:17-jre"},
		},
		{
			name:      "FROM inside a RUN heredoc is not an instruction",
			in:        "FROM busybox\nRUN <<EOF\nFROM eclipse-temurin:17-jre\nEOF\nRUN <<-X cat\n\tFROM openjdk:17\n\tX\n",
			want:      "FROM busybox\nRUN <<EOF\nFROM eclipse-temurin:17-jre\nEOF\nRUN <<-X cat\n\tFROM openjdk:17\n\tX\n",
			wantCalls: []string{"busybox"},
		},
		{
			name:      "continued image joins without a space",
			in:        "FROM eclipse-temurin:17\\\n-jre\nCOPY a /a\n",
			want:      "FROM devenv.local/jre:17\nCOPY a /a\n",
			wantCalls: []string{"eclipse-temurin:17-jre"},
		},
		{
			name:      "continued ARG default joins without a space",
			in:        "ARG BASE=eclipse-temurin:\\\n17-jre\nFROM $BASE\n",
			want:      "ARG BASE=eclipse-temurin:\\\n17-jre\nFROM $BASE\n",
			wantArgs:  map[string]string{"BASE": "devenv.local/jre:17"},
			wantCalls: []string{"eclipse-temurin:17-jre"},
		},
		{
			name:      "CRLF line ends kept",
			in:        "FROM eclipse-temurin:17-jre\r\nCOPY a /a\r\n",
			want:      "FROM devenv.local/jre:17\r\nCOPY a /a\r\n",
			wantCalls: []string{"eclipse-temurin:17-jre"},
		},
		{
			name:      "COPY --from with a heredoc: the heredoc is kept",
			in:        "FROM scratch\nCOPY --from=openjdk:17-jre <<EOF /opt/x\nFROM eclipse-temurin:17-jre\nEOF\n",
			want:      "FROM scratch\nCOPY --from=devenv.local/jre:17 <<EOF /opt/x\nFROM eclipse-temurin:17-jre\nEOF\n",
			wantCalls: []string{"openjdk:17-jre"},
		},
		{
			name:      "COPY --from on a continued line",
			in:        "FROM scratch\nCOPY \\\n  --from=openjdk:17-jre /opt /opt\nCMD [\"/opt/x\"]\n",
			want:      "FROM scratch\nCOPY --from=devenv.local/jre:17 /opt /opt\nCMD [\"/opt/x\"]\n",
			wantCalls: []string{"openjdk:17-jre"},
		},
		{
			name:      "flag naming the same text as the image",
			in:        "FROM --platform=openjdk:17-jre openjdk:17-jre\n",
			want:      "FROM --platform=openjdk:17-jre devenv.local/jre:17\n",
			wantCalls: []string{"openjdk:17-jre"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls []string
			got, args, _, err := RewriteDockerfile([]byte(tc.in), tc.args, fakeResolve(&calls))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("Dockerfile =\n%q\nwant\n%q", got, tc.want)
			}
			if !slices.Equal(calls, tc.wantCalls) {
				t.Errorf("resolve calls = %q, want %q", calls, tc.wantCalls)
			}
			wantArgs := tc.wantArgs
			if wantArgs == nil {
				wantArgs = map[string]string{}
			}
			if !maps.Equal(args, wantArgs) {
				t.Errorf("args = %v, want %v", args, wantArgs)
			}
		})
	}
}
