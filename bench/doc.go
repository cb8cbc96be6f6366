// Package bench measures devenv against the plain baseline a user would type
// by hand, on the same cluster in the same run:
//
//   - BenchmarkSaveToServing: from saving a one-line change of the example's
//     Go service (transfermoney) to the new version answering inside the
//     cluster, with devenv's watch loop, against the manual loop (build.sh,
//     docker build, kind load docker-image, kubectl set image, kubectl
//     rollout status, then wait until the new version answers), and
//     devenv's own overhead per save (devenv-own-s: the save's summary line
//     without the user's prebuild); the same for the Java service (account:
//     Version.java edited, build.sh's incremental javac and jar) in the same
//     rounds, reported as java-devenv-s, java-manual-s, java-devenv/manual
//     and java-devenv-own-s;
//   - BenchmarkUp: a cold devenv up against a bare kind create cluster, and a
//     warm devenv up with nothing changed, measured as a CLI process
//     (`devenv up --no-watch`, from exec to exit: warm-up-s) and in process
//     (warm-up-inprocess-s);
//   - BenchmarkStart: devenvtest.Start, as a go test calls it, on a project
//     of its own: once with no cluster (cold-start-s), on a current
//     environment (warm-start-s), and while another Start holds it, so that
//     it attaches (attach-start-s);
//   - BenchmarkLiveVia: a live update of transfermoney (cluster.LiveUpdate)
//     through the Kubernetes API (exec-s: pods/exec) against from its kind
//     node (node-s: devenv's own supervisor copy, nsenter), alternating on
//     the same container, and their ratio exec/node;
//   - BenchmarkRegistry: the cosmos example on one kind cluster the
//     benchmark created without devenv, with cluster.context, images
//     loaded straight into the node against pushed to a registry container
//     the node pulls from: a cold up each (registry-up-s, load-up-s) and
//     save to serving with the image swapped (registry-save-s,
//     load-save-s), and the ratios registry/load.
//
// Run with `make bench`. Each reports the medians in seconds and the ratio
// devenv/manual (or of the two ways) as custom metrics; DEVENV_BENCH_ROUNDS
// sets the rounds (default 5). They need Docker, the stand-in images
// (devenv images build; BenchmarkRegistry also the registry stand-in
// devenv.local/registry:3), kubectl, and the Go module proxy (the kind
// CLI is built from sigs.k8s.io/kind@v0.33.0).
package bench
