package images

import (
	"github.com/devenv-tool/devenv/internal/images/debian"
	"github.com/devenv-tool/devenv/internal/images/distribution"
	"github.com/devenv-tool/devenv/internal/images/java"
	"github.com/devenv-tool/devenv/internal/images/kfake"
	"github.com/devenv-tool/devenv/internal/images/kindnode"
	"github.com/devenv-tool/devenv/internal/images/standin"
)

// All returns every stand-in devenv knows, in dependency order (each one
// after the stand-ins it Needs).
func All() []standin.StandIn {
	return []standin.StandIn{
		debian.StandIn(),
		kindnode.StandIn(),
		kfake.StandIn(),
		java.JRE(),
		java.H2(),
		distribution.StandIn(),
	}
}
