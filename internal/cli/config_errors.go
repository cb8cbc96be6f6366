package cli

// isConfigError reports whether err comes from reading devenv.yaml (exit code 2).
// It is replaced by a check against the config package's error type.
func isConfigError(err error) bool { return false }
