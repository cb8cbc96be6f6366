// Command marker stands in for a supervisor that a container replaced:
// run, it writes /devenv-marker (in whatever root it runs) and exits 0.
// The live-update integration test checks that devenv never runs it.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := os.WriteFile("/devenv-marker", []byte(fmt.Sprintf("run as user %d\n", os.Geteuid())), 0o644); err != nil {
		fmt.Println(err)
	}
}
