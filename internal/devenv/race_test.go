//go:build race

package devenv

// raceEnabled is set when the tests run under the race detector, which
// makes the assembly-heavy tests ten times slower and skews heap figures.
const raceEnabled = true
