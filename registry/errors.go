package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// explain wraps err, from doing what against the registry at host, with
// what to do about it.
func explain(ctx context.Context, what, host string, err error) error {
	if hint := hint(host, err); hint != "" && ctx.Err() == nil {
		return fmt.Errorf("%s at registry %s: %w; %s", what, host, err, hint)
	}
	return fmt.Errorf("%s at registry %s: %w", what, host, err)
}

// hint says what to do about err from the registry at host, "" when there
// is nothing useful to say.
func hint(host string, err error) string {
	msg := err.Error()
	var terr *transport.Error
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var certErr *tls.CertificateVerificationError
	var authErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"),
		strings.Contains(msg, "first record does not look like a TLS handshake"),
		errors.Is(err, ErrPlainHTTP):
		return fmt.Sprintf("the registry at %s speaks plain HTTP, not HTTPS: if that is intended, set `registry: {address: %s, insecure: true}` in devenv.yaml", host, host)
	case errors.As(err, &certErr), errors.As(err, &authErr), errors.As(err, &hostErr):
		return fmt.Sprintf("this machine does not trust the certificate of %s: add its CA to the system's trust store", host)
	case errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden):
		return fmt.Sprintf("the registry refused access: log in with `docker login %s` (devenv uses the credentials Docker keeps)", host)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("is the registry's address %s right? (its name does not resolve)", host)
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.As(err, &opErr) && opErr.Op == "dial", isTimeout(err):
		return fmt.Sprintf("is the registry running at %s?", host)
	}
	return ""
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
