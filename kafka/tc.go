package kafka

import (
	"os"

	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/devenv-tool/devenv/internal/log"
)

// configureTestcontainers sets, when unset, the two environment variables
// testcontainers-go must see for devenv's containers:
//
//   - TESTCONTAINERS_RYUK_DISABLED=true: devenv owns its containers and they
//     must outlive the process (and the Ryuk image cannot be pulled offline);
//   - TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1: inside a container (/.dockerenv)
//     testcontainers would otherwise guess the host's address from the bridge
//     gateway, which dockerd 20.10 does not report.
//
// testcontainers-go v0.45 reads its configuration once, lazily, on the first
// call that needs it (internal/config.Read behind a sync.Once) and the host
// override on every call, so setting them before the first call is enough.
// A value the user set is left alone.
//
// It also silences testcontainers-go's process-wide default logger, which
// would print a multi-line "Connected to docker" banner into devenv's
// output; the per-container lines go to devenv's logger (tcLogger) instead.
func configureTestcontainers() {
	tclog.SetDefault(tclog.NewNoopLogger())
	for k, v := range map[string]string{
		"TESTCONTAINERS_RYUK_DISABLED": "true",
		"TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1",
	} {
		if _, ok := os.LookupEnv(k); !ok {
			_ = os.Setenv(k, v)
		}
	}
}

// tcLogger sends testcontainers-go's progress lines to the debug level.
type tcLogger struct{ l *log.Logger }

func (t tcLogger) Printf(format string, args ...any) { t.l.Debugf("testcontainers: "+format, args...) }
