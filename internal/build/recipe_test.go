package build

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

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
		"# escape=`\nFROM scratch\n",
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
