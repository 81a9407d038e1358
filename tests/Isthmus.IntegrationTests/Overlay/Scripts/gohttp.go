// gohttp: a static Go HTTP server and client for the seccomp-mode tests (standard library only; built by
// the test with CGO_ENABLED=0, so it is a statically linked binary that LD_PRELOAD cannot reach).
//
//	gohttp server PORT             listens on ":PORT" (dual-stack); prints "LISTENING PORT", then one
//	                               "CONN remote=IP:PORT local=IP:PORT" line per accepted connection; each
//	                               response body is "hello REMOTE_IP".
//	gohttp client URL N CONNS      N GET requests over at most CONNS parallel keep-alive connections;
//	                               prints "LOCAL IP:PORT" per new connection and "DONE ok=.. failed=.. conns=.."
//	                               (exit 1 if any request failed or a body named another address).
//	gohttp resolve NAME            Go's own resolver (no libc): "ADDR IP" per address of NAME, then
//	                               "PTR NAME" per name of the first address; "ERROR ..." and exit 1 if not found.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) >= 3 && os.Args[1] == "server" {
		server(os.Args[2])
		return
	}
	if len(os.Args) >= 5 && os.Args[1] == "client" {
		n, _ := strconv.Atoi(os.Args[3])
		conns, _ := strconv.Atoi(os.Args[4])
		os.Exit(client(os.Args[2], n, conns))
	}
	if len(os.Args) >= 3 && os.Args[1] == "resolve" {
		os.Exit(resolve(os.Args[2]))
	}
	fmt.Fprintln(os.Stderr, "usage: gohttp server PORT | gohttp client URL N CONNS | gohttp resolve NAME")
	os.Exit(2)
}

func server(port string) {
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fmt.Println("ERROR listen:", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			fmt.Fprintf(w, "hello %s", host)
		}),
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateNew {
				mu.Lock()
				fmt.Printf("CONN remote=%s local=%s\n", c.RemoteAddr(), c.LocalAddr())
				mu.Unlock()
			}
		},
	}
	fmt.Printf("LISTENING %s\n", port)
	if err := srv.Serve(ln); err != nil {
		fmt.Println("ERROR serve:", err)
		os.Exit(1)
	}
}

func client(url string, n, conns int) int {
	tr := &http.Transport{MaxConnsPerHost: conns, MaxIdleConnsPerHost: conns, MaxIdleConns: conns}
	c := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	var ok, failed, newConns int64
	var mu sync.Mutex
	locals := map[string]bool{}
	var bodies sync.Map
	var wg sync.WaitGroup
	work := make(chan int, n)
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	for g := 0; g < conns; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
					if !info.Reused {
						atomic.AddInt64(&newConns, 1)
						mu.Lock()
						l := info.Conn.LocalAddr().String()
						if !locals[l] {
							locals[l] = true
							fmt.Printf("LOCAL %s\n", l)
						}
						mu.Unlock()
					}
				}}
				req, _ := http.NewRequest("GET", url, nil)
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
				resp, err := c.Do(req)
				if err != nil {
					atomic.AddInt64(&failed, 1)
					fmt.Println("ERROR", err)
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(string(b), "hello ") {
					atomic.AddInt64(&failed, 1)
					fmt.Println("ERROR status", resp.StatusCode, err)
					continue
				}
				bodies.Store(string(b), true)
				atomic.AddInt64(&ok, 1)
			}
		}()
	}
	wg.Wait()
	seen := []string{}
	bodies.Range(func(k, _ any) bool { seen = append(seen, k.(string)); return true })
	fmt.Printf("BODIES %s\n", strings.Join(seen, ","))
	fmt.Printf("DONE ok=%d failed=%d conns=%d\n", ok, failed, newConns)
	if failed != 0 || len(seen) != 1 {
		return 1
	}
	return 0
}

func resolve(name string) int {
	addrs, err := net.LookupHost(name)
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	for _, a := range addrs {
		fmt.Println("ADDR", a)
	}
	names, err := net.LookupAddr(addrs[0])
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	for _, n := range names {
		fmt.Println("PTR", n)
	}
	return 0
}
