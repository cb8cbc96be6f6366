package kafka

import (
	"errors"
	"fmt"
	"os"

	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/devenv-tool/devenv/internal/log"
)

// ErrReaper is returned (wrapped) by Ensure when testcontainers-go's reaper
// (Ryuk) is on in this process: it would remove the broker when the process
// exits, while devenv's broker must outlive it. Call ConfigureTestcontainers.
var ErrReaper = errors.New("testcontainers-go's reaper (Ryuk) is on")

// ConfigureTestcontainers prepares this process's testcontainers-go for
// devenv's containers. A program that calls Ensure calls it once, early,
// before anything in the process uses testcontainers-go. It changes the
// whole process, which is why Ensure does not do it on its own:
//
//   - it sets TESTCONTAINERS_RYUK_DISABLED=true: devenv owns its containers
//     and they must outlive the process (and the Ryuk image cannot be pulled
//     offline);
//   - it sets TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1: inside a container
//     (/.dockerenv) testcontainers would otherwise guess the host's address
//     from the bridge gateway, which dockerd 20.10 does not report;
//   - it silences testcontainers-go's process-wide default logger, which
//     prints a multi-line "Connected to docker" banner; Ensure sends the
//     per-container lines to its own logger (Options.Log, debug level).
//
// A variable the user set is left alone. testcontainers-go v0.45 reads its
// configuration once per process (on the first call that needs it) and the
// host override on every call, so the variables must be set before that
// first read: ConfigureTestcontainers returns an error wrapping ErrReaper
// when the configuration was already read with the reaper on, or when the
// user's own settings turn it on.
func ConfigureTestcontainers() error {
	tclog.SetDefault(tclog.NewNoopLogger())
	for k, v := range map[string]string{
		"TESTCONTAINERS_RYUK_DISABLED": "true",
		"TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1",
	} {
		if _, ok := os.LookupEnv(k); !ok {
			if err := os.Setenv(k, v); err != nil {
				return fmt.Errorf("setting %s: %w", k, err)
			}
		}
	}
	return checkTestcontainers()
}

// checkTestcontainers fails when testcontainers-go runs its reaper in this process.
func checkTestcontainers() error {
	if testcontainers.ReadConfig().RyukDisabled {
		return nil
	}
	return fmt.Errorf("%w in this process (TESTCONTAINERS_RYUK_DISABLED=%q) and would remove the kafka container when the process exits: "+
		"call kafka.ConfigureTestcontainers() at the start of the program, before anything uses testcontainers-go, or set TESTCONTAINERS_RYUK_DISABLED=true",
		ErrReaper, os.Getenv("TESTCONTAINERS_RYUK_DISABLED"))
}

// tcLogger sends testcontainers-go's progress lines to the debug level.
type tcLogger struct{ l *log.Logger }

func (t tcLogger) Printf(format string, args ...any) { t.l.Debugf("testcontainers: "+format, args...) }
