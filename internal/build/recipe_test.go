package build

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestParseRecipeReadsAsDocker pins the places where devenv's own reader
// and `docker build` used to disagree.
func TestParseRecipeReadsAsDocker(t *testing.T) {
	tests := []struct {
		name      string
		df        string
		args      map[string]string
		wantBase  string
		wantSteps []step
	}{
		{
			name:      "escape directive: backtick continues, backslash is a character",
			df:        "# escape=`\nFROM scratch\nCOPY a `\n  b /dst/\nENV P=C:\\dir\n",
			wantSteps: []step{{line: 3, op: "copy", args: []string{"a", "b", "/dst/"}}, {line: 5, op: "env", args: []string{"P", `C:\dir`}}},
		},
		{
			name:      "default escape: backslash escapes in values",
			df:        "FROM scratch\nENV P=C:\\dir\n",
			wantSteps: []step{{line: 2, op: "env", args: []string{"P", "C:dir"}}},
		},
		{
			name:     "several ARGs on one line",
			df:       "ARG A=alpine B=2\nFROM $A\n",
			wantBase: "alpine",
		},
		{
			name:     "global ARG default built from an earlier one, quoted",
			df:       "ARG REPO=eclipse-temurin\nARG IMG=\"${REPO}:17-jre\"\nFROM ${IMG}\n",
			wantBase: "eclipse-temurin:17-jre",
		},
		{
			name:     "build arg beats an ARG that other ARGs use",
			df:       "ARG TAG=1\nARG IMG=busybox:$TAG\nFROM $IMG\n",
			args:     map[string]string{"TAG": "2"},
			wantBase: "busybox:2",
		},
		{
			name:      "continuation joins without a space",
			df:        "FROM scratch\nCOPY a\\\nb /dst/\nENV PATH=/usr/local/bin:\\\n/usr/bin\n",
			wantSteps: []step{{line: 2, op: "copy", args: []string{"ab", "/dst/"}}, {line: 4, op: "env", args: []string{"PATH", "/usr/local/bin:/usr/bin"}}},
		},
		{
			name:      "continuation after a blank keeps the words apart",
			df:        "FROM scratch\nCOPY a \\\n  b /dst/\n",
			wantSteps: []step{{line: 2, op: "copy", args: []string{"a", "b", "/dst/"}}},
		},
		{
			name: "quotes in ENV and LABEL values as the shell reads them",
			df:   "FROM scratch\nENV A='single quoted' B=\"x\\\"y\" C=a\\ b\nLABEL \"k\"=v\n",
			wantSteps: []step{
				{line: 2, op: "env", args: []string{"A", "single quoted", "B", `x"y`, "C", "a b"}},
				{line: 3, op: "label", args: []string{"k", "v"}},
			},
		},
		{
			name:      "shell-form CMD continued: one command line",
			df:        "FROM scratch\nCMD echo a \\\n  && echo b\n",
			wantSteps: []step{{line: 2, op: "cmd", args: []string{"echo a   && echo b"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parseRecipe([]byte(tc.df), tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if r.base != tc.wantBase {
				t.Errorf("base = %q, want %q", r.base, tc.wantBase)
			}
			if !reflect.DeepEqual(r.steps, tc.wantSteps) {
				t.Errorf("steps = %+v\nwant %+v", r.steps, tc.wantSteps)
			}
		})
	}
}

// A FROM inside a heredoc is the heredoc's text, not a second stage.
func TestParseRecipeHeredocIsNotAStage(t *testing.T) {
	_, err := parseRecipe([]byte("FROM scratch\nCOPY <<EOF /x\nFROM busybox\nEOF\n"), nil)
	if !errors.Is(err, errNotSimple) || !strings.Contains(err.Error(), "line 2: COPY with a heredoc") {
		t.Fatalf("err = %v, want the heredoc named on line 2", err)
	}
}

func TestParseRecipe(t *testing.T) {
	r, err := parseRecipe([]byte("# syntax comment is fine after line 1\nARG JRE_IMAGE=eclipse-temurin:17-jre\nARG TAG\nFROM ${JRE_IMAGE}\nCOPY target/*.jar /app/\nEXPOSE 8080\nENV A=1 \\\n  # dropped\n  B=\"two words\"\nENTRYPOINT java -jar /app/a.jar\n"),
		map[string]string{"JRE_IMAGE": "devenv.local/jre:17"})
	if err != nil {
		t.Fatal(err)
	}
	if r.base != "devenv.local/jre:17" {
		t.Errorf("base = %q, want the build arg's value", r.base)
	}
	want := []step{
		{line: 5, op: "copy", args: []string{"target/*.jar", "/app/"}},
		{line: 6, op: "expose", args: []string{"8080"}},
		{line: 7, op: "env", args: []string{"A", "1", "B", "two words"}},
		{line: 10, op: "entrypoint", args: []string{"java -jar /app/a.jar"}},
	}
	if !reflect.DeepEqual(r.steps, want) {
		t.Errorf("steps = %+v\nwant %+v", r.steps, want)
	}

	r, err = parseRecipe([]byte("FROM scratch\nCOPY [\"bin/a b\", \"/x\"]\nCMD [\"/x\"]\nENV OLD style value\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.base != "" || !r.steps[0].json || r.steps[0].args[0] != "bin/a b" || !r.steps[1].json || r.steps[2].args[1] != "style value" {
		t.Errorf("scratch recipe = %+v", r)
	}

	for _, df := range []string{
		"FROM golang AS build\nRUN go build\nFROM scratch\n",
		"FROM scratch\nRUN true\n",
		"FROM scratch\nCOPY --from=build /a /a\n",
		"FROM scratch\nCOPY --chown=1:1 a /a\n",
		"FROM scratch\nADD a /a\n",
		"FROM scratch\nARG X\nENV Y=$X\n",
		"FROM --platform=linux/amd64 alpine\n",
		"# syntax=docker/dockerfile:1\nFROM scratch\n",
		"FROM scratch\nCOPY <<EOF /x\nhello\nEOF\n",
		"FROM scratch\nCOPY --chmod=644 a /a\n",
		"COPY a /a\n",
		"ARG B\nFROM ${B}\n",
		"FROM scratch\nHEALTHCHECK NONE\n",
		"FROM scratch\nCOPY a\n",
	} {
		if _, err := parseRecipe([]byte(df), nil); !errors.Is(err, errNotSimple) {
			t.Errorf("%q: err = %v, want errNotSimple", df, err)
		} else if !strings.Contains(err.Error(), "line") && !strings.Contains(err.Error(), "FROM") {
			t.Errorf("%q: reason %q names no line", df, err)
		}
	}
}
