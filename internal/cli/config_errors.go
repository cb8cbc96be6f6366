package cli

import (
	"errors"

	"github.com/devenv-tool/devenv/internal/config"
)

// isConfigError reports whether err comes from reading devenv.yaml (exit code 2).
func isConfigError(err error) bool { return errors.Is(err, config.ErrInvalid) }
