package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/devenv-tool/devenv/internal/devenv"
)

func TestPrintStatusForwards(t *testing.T) {
	r := &devenv.Report{Forwards: []devenv.ForwardStatus{
		{Service: "account", Port: 8080, HostPort: 18080, HostAddress: "127.0.0.1:18080", Forwarding: true},
		{Service: "payments", Port: 9000, HostPort: 40001, HostAddress: "127.0.0.1:40001", Message: "not forwarding: no devenv up is watching"},
		{Service: "audit", Port: 7000, Message: "not forwarding; the host port is chosen by the first devenv up that watches"},
	}}
	var b bytes.Buffer
	printStatus(&b, r)
	for _, want := range []string{
		"✓ forward   account        127.0.0.1:18080 -> account:8080\n",
		"- forward   payments       127.0.0.1:40001 -> payments:9000  (not forwarding: no devenv up is watching)\n",
		"- forward   audit          - -> audit:7000  (not forwarding; the host port is chosen by the first devenv up that watches)\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status output:\n%s\nwant line %q", b.String(), want)
		}
	}
}
