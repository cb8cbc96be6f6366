package cluster

import (
	"fmt"
	"strings"
	"sync"

	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	kindlog "sigs.k8s.io/kind/pkg/log"

	"github.com/devenv-tool/devenv/internal/log"
)

// newProvider is kind's Docker provider logging through lg.
func newProvider(lg *log.Logger) *kindcluster.Provider {
	return kindcluster.NewProvider(kindcluster.ProviderWithDocker(), kindcluster.ProviderWithLogger(kindLogger{lg}))
}

// kindLogger adapts devenv's logger to kind's: level 0 to Infof, higher
// levels to Debugf, errors to warnings (the error itself is returned too).
type kindLogger struct{ l *log.Logger }

func (k kindLogger) Warn(message string)               { k.l.Warnf("%s", message) }
func (k kindLogger) Warnf(format string, args ...any)  { k.l.Warnf(format, args...) }
func (k kindLogger) Error(message string)              { k.l.Warnf("%s", message) }
func (k kindLogger) Errorf(format string, args ...any) { k.l.Warnf(format, args...) }
func (k kindLogger) V(level kindlog.Level) kindlog.InfoLogger {
	return kindInfo{l: k.l, debug: level > 0}
}

type kindInfo struct {
	l     *log.Logger
	debug bool
}

func (i kindInfo) Enabled() bool { return !i.debug || i.l.Verbose() }
func (i kindInfo) Info(message string) {
	i.Infof("%s", message)
}
func (i kindInfo) Infof(format string, args ...any) {
	msg := strings.TrimRight(fmt.Sprintf(format, args...), "\n")
	if msg == "" {
		return
	}
	if i.debug {
		i.l.Debugf("kind: %s", msg)
	} else {
		i.l.Infof("%s", msg)
	}
}

// warningCollector records the API server's warnings (deprecations and the
// like) so Apply can return them; they are also logged at debug level.
type warningCollector struct {
	log  *log.Logger
	mu   sync.Mutex
	list []string
}

// HandleWarningHeader implements rest.WarningHandler.
func (w *warningCollector) HandleWarningHeader(code int, _ string, text string) {
	if code != 299 || text == "" {
		return
	}
	w.mu.Lock()
	w.list = append(w.list, text)
	w.mu.Unlock()
	w.log.Debugf("API warning: %s", text)
}

// warnings returns what was collected.
func (w *warningCollector) warnings() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.list...)
}

// debugWarnings logs API warnings at debug level and keeps nothing.
type debugWarnings struct{ log *log.Logger }

// HandleWarningHeader implements rest.WarningHandler.
func (d debugWarnings) HandleWarningHeader(code int, _ string, text string) {
	if code == 299 && text != "" {
		d.log.Debugf("API warning: %s", text)
	}
}
