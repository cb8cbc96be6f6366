package java

import (
	"strings"
	"testing"

	"github.com/devenv-tool/devenv/internal/images/standin"
)

func TestMatchesJRE(t *testing.T) {
	tests := map[string]bool{
		"eclipse-temurin:17-jre":                               true,
		"eclipse-temurin:17":                                   true,
		"docker.io/library/eclipse-temurin:17.0.9_9-jre-jammy": true,
		"openjdk:15-jre":                                       true,
		"openjdk:11-jre-slim":                                  true,
		"openjdk:8u342-jre":                                    true,
		"amazoncorretto:17":                                    true,
		"eclipse-temurin:17-jre@sha256:0123456789abcdef":       true,
		"eclipse-temurin:21-jre":                               false, // a Java 21 jar does not run on 17
		"eclipse-temurin":                                      false, // version unknown
		"openjdk:latest":                                       false,
		"busybox:17":                                           false,
		"myregistry:5000/openjdk:17":                           false,
		"devenv.local/jre:17":                                  false,
	}
	for ref, want := range tests {
		if got := MatchesJRE(ref); got != want {
			t.Errorf("MatchesJRE(%q) = %v, want %v", ref, got, want)
		}
	}
}

func TestStandIns(t *testing.T) {
	jre, h2 := JRE(), H2()
	if jre.Ref != "devenv.local/jre:17" || h2.Ref != "devenv.local/h2:2.1.214" {
		t.Fatalf("refs = %s, %s", jre.Ref, h2.Ref)
	}
	if len(jre.Needs) != 1 || jre.Needs[0] != "debian-base" || len(h2.Needs) != 1 || h2.Needs[0] != "jre" {
		t.Fatalf("needs = %v, %v", jre.Needs, h2.Needs)
	}
	for _, s := range []standin.StandIn{jre, h2} {
		parts, err := s.Recipe()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(parts, "\n"), "FROM ${BASE}") {
			t.Errorf("%s: recipe does not cover the Dockerfile: %q", s.Name, parts)
		}
	}
	if standin.Hash(mustRecipe(t, jre)) == standin.Hash(mustRecipe(t, h2)) {
		t.Error("jre and h2 recipes hash the same")
	}
	if !strings.Contains(string(h2Dockerfile), "-tcpAllowOthers") || !strings.Contains(string(h2Dockerfile), "-ifNotExists") {
		t.Error("h2 server must accept remote clients and create databases on demand")
	}
}

func mustRecipe(t *testing.T, s standin.StandIn) []string {
	t.Helper()
	p, err := s.Recipe()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
