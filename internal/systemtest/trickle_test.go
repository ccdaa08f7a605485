package systemtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// trickle sends a steady trickle of VM commands (creates, and stops and
// starts of running VMs) alternately through every live core instance, as
// clients behind a load balancer would, and counts what was accepted.
type trickle struct {
	token string
	http  *http.Client

	mu      sync.Mutex
	cores   []string    // base URLs of the instances that take requests
	running []string    // VMs whose create was accepted, to act on
	stopped chan string // VMs stopped, to start again

	accepted, refused   atomic.Int64
	retried, unanswered atomic.Int64 // attempts repeated; commands given up on
	positions           []int64      // log positions the 202s named, under mu
	stop                chan struct{}
	done                chan struct{}
}

func startTrickle(t *testing.T, token string, cores ...string) *trickle {
	tr := &trickle{token: token, http: &http.Client{Timeout: 10 * time.Second}, cores: cores,
		stopped: make(chan string, 1024), stop: make(chan struct{}), done: make(chan struct{})}
	go tr.run(t)
	t.Cleanup(tr.halt)
	return tr
}

// setCores changes the instances requests go to (one was stopped).
func (tr *trickle) setCores(cores ...string) {
	tr.mu.Lock()
	tr.cores = cores
	tr.mu.Unlock()
}

func (tr *trickle) halt() {
	select {
	case <-tr.stop:
	default:
		close(tr.stop)
	}
	<-tr.done
}

func (tr *trickle) run(t *testing.T) {
	defer close(tr.done)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-tr.stop:
			return
		case <-tick.C:
		}
		tr.mu.Lock()
		base := tr.cores[i%len(tr.cores)]
		var vm string
		if i%4 == 3 && len(tr.running) > 0 {
			vm, tr.running = tr.running[0], tr.running[1:]
		}
		tr.mu.Unlock()
		switch {
		case vm != "":
			if tr.post(base, "/v1/vms/"+vm+"/actions/stop", nil) != "" {
				tr.stopped <- vm
			}
		case i%4 == 1 && len(tr.stopped) > 0:
			tr.post(base, "/v1/vms/"+<-tr.stopped+"/actions/start", nil)
		default:
			if id := tr.post(base, "/v1/vms", map[string]any{"name": fmt.Sprintf("c-%d", i), "kind": "qemu",
				"cores": 1, "memory_mb": 512, "disk_gb": 8, "template": "debian-12"}); id != "" {
				tr.mu.Lock()
				tr.running = append(tr.running, id)
				tr.mu.Unlock()
			}
		}
	}
}

// post sends a command; it returns the VM id when it was accepted (202).
// As a client behind a load balancer would, it retries a command whose
// answer it did not get (the connection broke, a 5xx: an instance or the
// database going away) with the same Idempotency-Key on the next live
// instance, for up to 30 s: the command may have been stored before its
// answer was lost, and the key makes the retry return that first answer
// instead of a second command. Refusals (4xx: a VM not yet running, say)
// are final and only counted.
func (tr *trickle) post(base, path string, body any) string {
	var data []byte
	if body != nil {
		data, _ = json.Marshal(body)
	}
	key := uuid.NewString()
	deadline := time.Now().Add(30 * time.Second)
	for try := 0; ; try++ {
		id, status, err := tr.send(base, path, data, key)
		switch {
		case status == http.StatusAccepted:
			return id
		case err == nil && status < 500:
			tr.refused.Add(1)
			return ""
		case time.Now().After(deadline):
			tr.unanswered.Add(1)
			return ""
		}
		tr.retried.Add(1)
		time.Sleep(200 * time.Millisecond)
		tr.mu.Lock()
		base = tr.cores[try%len(tr.cores)]
		tr.mu.Unlock()
	}
}

// send sends one attempt; a 202 records the command as accepted.
func (tr *trickle) send(base, path string, data []byte, key string) (id string, status int, err error) {
	req, _ := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+tr.token)
	req.Header.Set("Idempotency-Key", key)
	if data != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := tr.http.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	var out struct {
		ID       string `json:"id"`
		Position int64  `json:"position"`
	}
	if resp.StatusCode != http.StatusAccepted {
		return "", resp.StatusCode, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", 0, err
	}
	tr.mu.Lock()
	tr.positions = append(tr.positions, out.Position)
	tr.mu.Unlock()
	tr.accepted.Add(1)
	return out.ID, resp.StatusCode, nil
}

// acceptedPositions are the log positions of every accepted command.
func (tr *trickle) acceptedPositions() []int64 {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]int64(nil), tr.positions...)
}
