// loadgen drives an HTTP endpoint with Intercom-style signed webhooks, each with a distinct
// notification id, signed before the clock starts so that signing costs the server nothing
// it would not pay in production.
//
// Two modes: closed loop (-rate 0: -concurrency requests always in flight, as fast as the
// server answers) and open loop (-rate R: request i is due at start + i/R; its latency is
// counted from when it was due, so a stalled server cannot hide its queue: no coordinated
// omission). It prints one JSON object; "complete" is false when the run was cut short
// (the deadline passed with requests unsent or unanswered), and the caller must not print
// figures from such a run.
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"
)

type result struct {
	Mode        string         `json:"mode"`
	URL         string         `json:"url"`
	Requests    int            `json:"requests"`
	Answered    int            `json:"answered"`
	OK          int            `json:"ok"`
	ByStatus    map[string]int `json:"by_status"`
	Errors      int            `json:"errors"`
	ErrorKinds  []string       `json:"error_kinds,omitempty"`
	Seconds     float64        `json:"seconds"`
	PerSecond   float64        `json:"per_second"`
	OfferedRate float64        `json:"offered_rate"`
	P50Ms       float64        `json:"p50_ms"`
	P90Ms       float64        `json:"p90_ms"`
	P99Ms       float64        `json:"p99_ms"`
	MaxMs       float64        `json:"max_ms"`
	Complete    bool           `json:"complete"`
}

type request struct {
	body      []byte
	signature string
	due       time.Time
}

func notification(runID string, i int, topic string) []byte {
	now := time.Now().Unix()
	return []byte(fmt.Sprintf(`{"type":"notification_event","app_id":"bench","id":"notif_%s_%d",`+
		`"topic":%q,"delivery_attempts":1,"first_sent_at":%d,"created_at":%d,`+
		`"data":{"type":"notification_event_data","item":{"type":"conversation","id":"%d",`+
		`"created_at":%d,"state":"open","title":"Load test conversation %d"}}}`,
		runID, i, topic, now, now, 100000+i%5000, now, i))
}

func sign(secret, body []byte) string {
	mac := hmac.New(sha1.New, secret)
	mac.Write(body)
	return "sha1=" + hex.EncodeToString(mac.Sum(nil))
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	index := int(float64(len(sorted)-1) * p)
	return float64(sorted[index].Microseconds()) / 1000
}

func main() {
	url := flag.String("url", "http://127.0.0.1:8080/webhooks/intercom", "where to POST")
	secret := flag.String("secret", "bench-secret", "client secret that signs the bodies")
	total := flag.Int("n", 20000, "requests to send")
	concurrency := flag.Int("concurrency", 64, "requests in flight at most")
	rate := flag.Float64("rate", 0, "requests per second (open loop); 0 = closed loop, as fast as answered")
	topic := flag.String("topic", "conversation.user.created", "Intercom topic of the notifications")
	runID := flag.String("run-id", fmt.Sprint(time.Now().UnixNano()), "makes the ids of this run distinct")
	deadline := flag.Duration("deadline", 5*time.Minute, "cut the run short after this long")
	flag.Parse()

	requests := make([]request, *total)
	for i := range requests {
		body := notification(*runID, i, *topic)
		requests[i] = request{body: body, signature: sign([]byte(*secret), body)}
	}
	// IdleConnTimeout under uvicorn's 5 s keep-alive: a connection the server is closing
	// must not be reused (a POST is not retried on it, and counts as an error).
	transport := &http.Transport{MaxIdleConns: *concurrency, MaxIdleConnsPerHost: *concurrency, MaxConnsPerHost: *concurrency, IdleConnTimeout: 4 * time.Second}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}

	ctx, cancel := context.WithTimeout(context.Background(), *deadline)
	defer cancel()
	latencies := make([]time.Duration, 0, *total)
	byStatus := map[string]int{}
	errors := 0
	errorKinds := map[string]bool{}
	var mu sync.Mutex
	work := make(chan *request, *concurrency)
	var wg sync.WaitGroup
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				started := r.due
				if started.IsZero() {
					started = time.Now()
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, *url, bytes.NewReader(r.body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json")
				req.Header.Set("User-Agent", "intercom-parrot-service-client/1.0")
				req.Header.Set("X-Hub-Signature", r.signature)
				resp, err := client.Do(req)
				elapsed := time.Since(started)
				mu.Lock()
				if err != nil {
					errors++
					if len(errorKinds) < 5 {
						errorKinds[err.Error()] = true
					}
				} else {
					byStatus[fmt.Sprint(resp.StatusCode)]++
					latencies = append(latencies, elapsed)
				}
				mu.Unlock()
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}

	start := time.Now()
	sent := 0
feed:
	for i := range requests {
		if *rate > 0 {
			requests[i].due = start.Add(time.Duration(float64(i) / *rate * float64(time.Second)))
			if wait := time.Until(requests[i].due); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					break feed
				}
			}
		}
		select {
		case work <- &requests[i]:
			sent++
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)

	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	mode := "closed"
	if *rate > 0 {
		mode = "open"
	}
	out := result{
		Mode: mode, URL: *url, Requests: *total, Answered: len(latencies), ByStatus: byStatus,
		OK: byStatus["200"], Errors: errors, Seconds: elapsed.Seconds(),
		PerSecond: float64(len(latencies)) / elapsed.Seconds(), OfferedRate: *rate,
		P50Ms: percentile(latencies, 0.50), P90Ms: percentile(latencies, 0.90),
		P99Ms:    percentile(latencies, 0.99),
		Complete: sent == *total && errors == 0 && ctx.Err() == nil,
	}
	for kind := range errorKinds {
		out.ErrorKinds = append(out.ErrorKinds, kind)
	}
	sort.Strings(out.ErrorKinds)
	if len(latencies) > 0 {
		out.MaxMs = float64(latencies[len(latencies)-1].Microseconds()) / 1000
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
