package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// LockSet is the outcome of a lock-set run: the tokens whose append was
// acknowledged, how many appends were refused (stale holder or stale list),
// and the list as it ended.
type LockSet struct {
	Acked   []int64
	Refused int
	Failed  int // requests with no clear answer (a 503, a fault): never acknowledged
	Final   []int64
}

// Kind is what the clients of a lock-set run hold: how they take it, the
// guard their appends carry, how they give it back (DELETE), and the
// configuration key of their list (one per kind, so runs can share a cluster).
type Kind struct {
	Guard   string                               // "lock", "eleicao" or "semaforo"
	Acquire func(client int) (path, body string) // POST
	Release func(token int64) (path string)
	List    string
}

var (
	// Lock is the lock "lockset".
	Lock = Kind{"lock",
		func(c int) (string, string) {
			return "/lock/lockset", fmt.Sprintf(`{"holder":"c%d","ttl":5,"aguardar":30}`, c)
		},
		func(t int64) string { return fmt.Sprintf("/lock/lockset?token=%d", t) }, "lockset"}
	// Election is the election "lockset": its leader holds.
	Election = Kind{"eleicao",
		func(c int) (string, string) {
			return "/eleicao/lockset/candidatar", fmt.Sprintf(`{"candidato":"c%d","ttl":5,"aguardar":30}`, c)
		},
		func(t int64) string { return fmt.Sprintf("/eleicao/lockset?token=%d", t) }, "lockset-eleicao"}
	// Semaphore is the semaphore "lockset" with one place.
	Semaphore = Kind{"semaforo",
		func(c int) (string, string) {
			return "/semaforo/lockset", fmt.Sprintf(`{"holder":"c%d","limite":1,"ttl":5,"aguardar":30}`, c)
		},
		func(t int64) string { return fmt.Sprintf("/semaforo/lockset?token=%d", t) }, "lockset-semaforo"}
)

// RunHolderSet is Jepsen's lock workload against an etcdapi at api, for what
// the clients hold of kind (a lock, an election's leadership or a semaphore's
// one place): clients each, for rounds, take it, read the list kept in the
// configuration key kind.List, append their token with a transaction guarded
// by what they hold, and give it back. pause(client, round) is how long that
// client stops while holding (0: none), as a GC pause would: the guard alone
// stands between a paused holder and the list.
func RunHolderSet(api string, kind Kind, clients, rounds int, pause func(client, round int) time.Duration) (LockSet, error) {
	list := kind.List
	client := &http.Client{Timeout: 60 * time.Second}
	post := func(method, path, body string) (int, map[string]json.RawMessage) {
		req, _ := http.NewRequest(method, api+path, bytes.NewReader([]byte(body)))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var v map[string]json.RawMessage
		json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}
	if code, _ := post("PUT", "/config/"+list, `{"valor":[]}`); code != 200 {
		return LockSet{}, fmt.Errorf("PUT /config/%s: %d", list, code)
	}
	var (
		mu  sync.Mutex
		out LockSet
		wg  sync.WaitGroup
	)
	for c := range clients {
		wg.Go(func() {
			for round := range rounds {
				path, body := kind.Acquire(c)
				code, lock := post("POST", path, body)
				var token int64
				if code != 200 || json.Unmarshal(lock["token"], &token) != nil {
					mu.Lock()
					out.Failed++
					mu.Unlock()
					continue
				}
				code, doc := post("GET", "/config/"+list, "")
				var tokens []int64
				if code != 200 || json.Unmarshal(doc[list], &tokens) != nil {
					mu.Lock()
					out.Failed++
					mu.Unlock()
					continue
				}
				time.Sleep(pause(c, round))
				next, _ := json.Marshal(append(tokens, token))
				code, _ = post("POST", "/transacao", fmt.Sprintf(
					`{"se":[],"entao":[{"definir":%q,"valor":%s}],"guarda":{%q:"lockset","token":%d}}`, list, next, kind.Guard, token))
				mu.Lock()
				switch code {
				case 200:
					out.Acked = append(out.Acked, token)
				case 409:
					out.Refused++
				default:
					out.Failed++
				}
				mu.Unlock()
				post("DELETE", kind.Release(token), "")
			}
		})
	}
	wg.Wait()
	for range 50 { // the cluster may still be recovering from the last fault
		code, doc := post("GET", "/config/"+list, "")
		if code == 200 {
			return out, json.Unmarshal(doc[list], &out.Final)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return out, fmt.Errorf("GET /config/%s after the run: no answer", list)
}

// Check tells what is wrong with a run: an acknowledged append missing from
// the list, or tokens not strictly increasing.
func (l LockSet) Check() error {
	in := map[int64]bool{}
	for i, tok := range l.Final {
		if i > 0 && tok <= l.Final[i-1] {
			return fmt.Errorf("tokens not increasing at %d: %v", i, l.Final)
		}
		in[tok] = true
	}
	for _, tok := range l.Acked {
		if !in[tok] {
			return fmt.Errorf("acknowledged append %d lost: %v", tok, l.Final)
		}
	}
	return nil
}
