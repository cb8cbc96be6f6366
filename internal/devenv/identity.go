package devenv

import (
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/project"
)

// ProjectID is the identity of cfg's environment: the project name on
// devenv's own kind cluster; name + context + namespace on a cluster devenv
// did not create, so two namespaces running the same project never share a
// container, a lock or a record.
func ProjectID(cfg *config.Config) project.ID {
	return project.ID{Name: cfg.Name, Namespace: cfg.Namespace}
}

// projectKey is ProjectID(cfg).Key(): what the kafka and h2 packages, the
// lock and devenv's records are keyed on.
func projectKey(cfg *config.Config) string { return ProjectID(cfg).Key() }
