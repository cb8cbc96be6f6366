//go:build !race

package devenv

const raceEnabled = false
