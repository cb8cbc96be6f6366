package java

import (
	"context"
	_ "embed"
	"strconv"

	"github.com/devenv-tool/devenv/internal/images/standin"
)

// Names and references of the two stand-ins.
const (
	JREName = "jre"
	JRERef  = standin.Registry + "/jre:17"
	H2Name  = "h2"
	H2Ref   = standin.Registry + "/h2:2.1.214"
	// H2Port is the TCP port the H2 server listens on inside its container.
	H2Port = 9092
	// H2Jar is where the H2 jar lives in the H2 image (for org.h2.tools.Shell).
	H2Jar = "/usr/share/java/h2.jar"
	// JavaMajor is the Java feature release of the JRE stand-in.
	JavaMajor = 17

	// baseName and baseRef name devenv's Debian base stand-in (package debian).
	baseName = "debian-base"
	baseRef  = standin.Registry + "/debian-base:bookworm"
	// revision changes whenever this builder changes what it produces.
	revision = "1"
)

var (
	//go:embed jre.Dockerfile
	jreDockerfile []byte
	//go:embed h2.Dockerfile
	h2Dockerfile []byte
)

// jreRepos are the repositories whose Java runtime images the JRE stand-in replaces.
var jreRepos = []string{"eclipse-temurin", "openjdk", "amazoncorretto", "ibm-semeru-runtimes", "azul/zulu-openjdk"}

// JRE describes the Java 17 runtime stand-in.
func JRE() standin.StandIn {
	return standin.StandIn{
		Name:    JREName,
		Ref:     JRERef,
		For:     "eclipse-temurin",
		Matches: MatchesJRE,
		Needs:   []string{baseName},
		Recipe: func() ([]string, error) {
			return []string{JREName, revision, baseRef, string(jreDockerfile)}, nil
		},
		Build: func(ctx context.Context, env *standin.Env, labels map[string]string) error {
			return standin.BuildDockerfile(ctx, env, standin.DockerBuild{
				Ref:       JRERef,
				Files:     map[string][]byte{"Dockerfile": jreDockerfile},
				BuildArgs: map[string]string{"BASE": baseRef},
				Labels:    labels,
			})
		},
	}
}

// H2 describes the H2 database server stand-in. There is no official H2
// image, so it stands in for nothing; the h2 package runs it by default.
func H2() standin.StandIn {
	return standin.StandIn{
		Name:  H2Name,
		Ref:   H2Ref,
		For:   "",
		Needs: []string{JREName},
		Recipe: func() ([]string, error) {
			return []string{H2Name, revision, JRERef, string(h2Dockerfile)}, nil
		},
		Build: func(ctx context.Context, env *standin.Env, labels map[string]string) error {
			return standin.BuildDockerfile(ctx, env, standin.DockerBuild{
				Ref:       H2Ref,
				Files:     map[string][]byte{"Dockerfile": h2Dockerfile},
				BuildArgs: map[string]string{"BASE": JRERef},
				Labels:    labels,
			})
		},
	}
}

// MatchesJRE reports whether ref names a Java runtime image the JRE stand-in
// can replace: eclipse-temurin, openjdk, amazoncorretto and similar, with a
// tag whose Java version is 17 or older (a jar built for an older Java runs on
// 17). Untagged and "latest" references do not match: their version is unknown.
func MatchesJRE(ref string) bool {
	repo, tag := standin.SplitRef(ref)
	found := false
	for _, r := range jreRepos {
		if repo == r {
			found = true
			break
		}
	}
	if !found || tag == "" {
		return false
	}
	// Leading number of the tag: "17-jre", "17.0.9_9-jre-jammy", "15-jre-slim", "8u392-b08-jre", "11".
	end := 0
	for end < len(tag) && tag[end] >= '0' && tag[end] <= '9' {
		end++
	}
	major, err := strconv.Atoi(tag[:end])
	if err != nil {
		return false
	}
	return major >= 8 && major <= JavaMajor
}
