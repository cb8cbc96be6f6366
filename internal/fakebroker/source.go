package fakebroker

import "embed"

// Source holds this package's Go files, so the stand-in image builder can
// compile the broker without a checkout of devenv. Builders skip *_test.go.
//
//go:embed *.go
var Source embed.FS
