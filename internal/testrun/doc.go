// Package testrun runs the tests declared in devenv.yaml (tests:) on the
// host: with the environment's addresses in DEVENV_* variables, in a process
// group of their own so that a timeout or a cancel ends every process a test
// started, and with results as a ✓/✗ line or JUnit XML for CI.
//
// It is a package of its own, and knows no Docker, cluster or watcher, so that
// the watch loop of devenv up (through Scheduler, which restarts a test when a
// service it depends on is updated again) and devenv test share one way of
// running a test, and so that the runner is tested in milliseconds with plain
// shell commands.
package testrun
