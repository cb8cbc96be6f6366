// Command echo is the integration tests' tiny image: "serve ADDR" answers
// every request with "hello from HOSTNAME"; "get URL" fetches URL (retrying
// for up to a minute) and prints the body. ECHO_VERSION, when set, adds a
// "version" line to the answer; without it, the version set at build time
// (-ldflags -X main.version=V), if any.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

var version string

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: echo serve ADDR | echo get URL")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		addr := ":8080"
		if len(os.Args) > 2 {
			addr = os.Args[2]
		}
		host, _ := os.Hostname()
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %s\n", host)
			v := os.Getenv("ECHO_VERSION")
			if v == "" {
				v = version
			}
			if v != "" {
				fmt.Fprintf(w, "version %s\n", v)
			}
		})
		fmt.Println("serving on", addr)
		if err := http.ListenAndServe(addr, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "get":
		cl := &http.Client{Timeout: 3 * time.Second}
		deadline := time.Now().Add(time.Minute)
		for {
			resp, err := cl.Get(os.Args[2])
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					fmt.Print(string(body))
					return
				}
				err = fmt.Errorf("status %s", resp.Status)
			}
			if time.Now().After(deadline) {
				fmt.Println("get failed:", err)
				os.Exit(1)
			}
			time.Sleep(time.Second)
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}
