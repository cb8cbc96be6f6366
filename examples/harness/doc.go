// Package harness shows a test in another module using devenv's test
// harness, github.com/devenv-tool/devenv/devenvtest, and nothing else of
// devenv: TestIntegrationTransfer brings up (or reuses) the cosmos project
// of the repository's devenv.yaml, posts a transfer to the transfermoney
// service and finds its event on the transfers topic.
//
//	go test -run TestIntegrationTransfer -v .
//
// devenvtest's TestIntegrationTwoBinaries runs this test's binary twice at
// once, to check that two test processes share one environment.
package harness
