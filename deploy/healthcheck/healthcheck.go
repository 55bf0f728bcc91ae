//go:build ignore

// Command healthcheck is the container health probe baked into the image by
// deploy/Dockerfile: the distroless runtime image has no shell, curl or wget.
// It sends one GET and exits 0 on a 2xx answer, 1 otherwise; a tcp://
// address only needs to accept a connection (the demo's in-memory broker):
//
//	/healthcheck http://127.0.0.1:8080/readyz
//	/healthcheck tcp://broker:9092
//
// The build tag keeps it out of ./... (go vet, go test); the Dockerfile
// builds it by file name: go build -o /healthcheck ./deploy/healthcheck/healthcheck.go
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: healthcheck URL|tcp://HOST:PORT")
		os.Exit(2)
	}
	if addr, ok := strings.CutPrefix(os.Args[1], "tcp://"); ok {
		conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			fmt.Fprintln(os.Stderr, "healthcheck:", err)
			os.Exit(1)
		}
		conn.Close()
		return
	}
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		fmt.Fprintln(os.Stderr, "healthcheck:", resp.Status)
		os.Exit(1)
	}
}
