// Package devenvtest lets a Go test use a devenv environment: the kind
// cluster, the Kafka broker beside it and the project's services, as
// devenv.yaml describes them. A test calls Start, and then asks the returned
// Env where things answer from the host:
//
//	func TestTransfer(t *testing.T) {
//		env := devenvtest.Start(t, devenvtest.WithFile("../../devenv.yaml"))
//		url := env.ServiceURL("transfermoney") // http://127.0.0.1:PORT, a port-forward
//		topic := env.Topic(t, "transfers")      // a topic of this test's own
//		...
//	}
//
// It exists so that a test needs neither the devenv CLI nor a script that
// runs `devenv up` first, and so that tests and a developer's watching
// `devenv up` share one environment instead of each making its own: a
// cluster takes tens of seconds to create, and a check that it is current
// takes under one.
//
// # Reuse, and what is never torn down
//
// Start reuses the environment when it is current (nothing is rebuilt or
// restarted), brings it up to date when the sources or devenv.yaml changed,
// and creates it when it is missing. When another process is using it (a
// `devenv up` that watches, another test binary), Start attaches to it
// without changing it, and waits for it to become current if it is not.
//
// THE ENVIRONMENT OUTLIVES THE TEST BINARY. Start does not remove what it
// created when the test ends, and there is no reaper: the cluster, the
// Kafka container and their volumes stay, so that the next `go test` run
// reuses them in a second. `devenv down` (or WithDown(true), which runs it
// at the test's cleanup) removes them; WithReuse(false) removes them before
// starting, for a test that needs a fresh environment.
//
// # What Start changes in the process
//
// A test binary is one process, and Start treats calling it as asking for
// the two process-wide settings the devenv libraries otherwise leave to the
// program: it calls kafka.ConfigureTestcontainers (testcontainers-go's
// reaper off, so that the broker outlives the process) when the project has
// Kafka, and it lets devenv install its docker shim first in PATH on a
// Docker engine that refuses --privileged (see cluster.InstallPrivilegedShim).
//
// Nothing this package exposes is one of devenv's internal types: the Env's
// methods return strings, errors and client-go types (Kube).
package devenvtest
