// Command h2probe is the pod of TestIntegrationH2Repoint: GET /h2 answers
// "ok" when a TCP connection to $H2_ADDRESS (the H2 server's Service)
// succeeds within a second, and 503 with the error otherwise.
// TestIntegrationArtifacts has it restart once: GET /exit answers, logs
// that it exits and exits with code 3, so that the kubelet restarts the
// container in its pod. The fault tests read GET /version: the contents of
// /version.txt, a file their saves change.
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := os.Getenv("H2_ADDRESS")
	http.HandleFunc("/h2", func(w http.ResponseWriter, _ *http.Request) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_ = c.Close()
		fmt.Fprintln(w, "ok")
	})
	http.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) {
		b, err := os.ReadFile("/version.txt")
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		_, _ = w.Write(b)
	})
	http.HandleFunc("/exit", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "exiting")
		log.Printf("h2probe exiting on request")
		go func() {
			time.Sleep(200 * time.Millisecond) // the answer goes out first
			os.Exit(3)
		}()
	})
	log.Printf("h2probe listening on :8080, probing %s", addr)
	log.Fatal(http.ListenAndServe(":8080", nil))
}
