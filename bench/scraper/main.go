// Command scraper times scrapes of one /metrics endpoint the way Prometheus's scraper makes them:
// Go's net/http client, Prometheus 3's request headers, and a gzip body decompressed by Go's
// compress/gzip before the scrape counts as done. bench/node_scrape.py builds it (standard
// library only, no module download) and runs it for each round of scrapes, so the figures for
// poolwatch and node_exporter come from the same client, one that does not share a Python
// interpreter's lock with its own workers.
//
// Usage: scraper -url URL -n TOTAL -c WORKERS -deadline SECONDS [-identity]
// Prints one JSON object: {"ms": [...], "errors": N, "wire_bytes": N, "body_bytes": N,
// "cpu_s": the scraper's own CPU seconds}.
package main

import (
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"
)

// What Prometheus 3.16 sends with every scrape; node_scrape.py passes the same list.
const accept = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.7," +
	"application/openmetrics-text;version=0.0.1;q=0.6," +
	"text/plain;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.3"

type result struct {
	Ms        []float64 `json:"ms"`
	Errors    int       `json:"errors"`
	WireBytes int64     `json:"wire_bytes"`
	BodyBytes int64     `json:"body_bytes"`
	// this client's own CPU (user+system) over the run: what reading and decompressing cost
	CPUSeconds float64 `json:"cpu_s"`
}

// counter counts the bytes read through it: the compressed size on the wire.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func scrape(client *http.Client, url string, identity bool) (wire, body int64, err error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("User-Agent", "Prometheus/3.16.0")
	req.Header.Set("Accept", accept)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
	if !identity {
		// set by hand, as Prometheus does, so the transport leaves decompression to us
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	wired := &counter{r: resp.Body}
	var reader io.Reader = wired
	if resp.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(wired)
		if err != nil {
			return 0, 0, err
		}
		reader = gz
	}
	body, err = io.Copy(io.Discard, reader)
	return wired.n, body, err
}

func main() {
	url := flag.String("url", "", "the endpoint to scrape")
	total := flag.Int("n", 100, "scrapes in all")
	workers := flag.Int("c", 10, "concurrent scrapers")
	deadline := flag.Float64("deadline", 45, "stop starting scrapes after this many seconds")
	identity := flag.Bool("identity", false, "ask for a plain body (no Accept-Encoding: gzip)")
	flag.Parse()
	if *url == "" || *total < 1 || *workers < 1 {
		fmt.Fprintln(os.Stderr, "scraper: -url, -n >= 1 and -c >= 1 are required")
		os.Exit(2)
	}
	until := time.Now().Add(time.Duration(*deadline * float64(time.Second)))
	var mu sync.Mutex
	var res result
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		share := *total / *workers
		if w < *total%*workers {
			share++
		}
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			// A new connection per scrape, as node_scrape.py's Python client makes them: each
			// scraper's own transport drops its idle connection after each scrape. Not
			// DisableKeepAlives, which would add "Connection: close", a header Prometheus does
			// not send.
			transport := &http.Transport{DisableCompression: true}
			client := &http.Client{Timeout: 10 * time.Second, Transport: transport}
			for i := 0; i < n && time.Now().Before(until); i++ {
				t0 := time.Now()
				wire, body, err := scrape(client, *url, *identity)
				transport.CloseIdleConnections()
				ms := float64(time.Since(t0).Microseconds()) / 1000
				mu.Lock()
				if err != nil {
					res.Errors++
				} else {
					res.Ms = append(res.Ms, ms)
					res.WireBytes, res.BodyBytes = wire, body
				}
				mu.Unlock()
			}
		}(share)
	}
	wg.Wait()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		res.CPUSeconds = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	if res.Ms == nil {
		res.Ms = []float64{}
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "scraper:", err)
		os.Exit(1)
	}
}
