package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Linearizability as etcd's robustness tests and Jepsen check it: concurrent HTTP
// clients record every call with its invocation and response time, and porcupine
// searches for one sequential order of the whole history that the model allows and
// that respects real time. Each key (a configuration key or a user) is a register.

type linKind uint8

const (
	linRead  linKind = iota // GET /config/{k}, GET /usuarios/{id}
	linWrite                // PUT /config/{k}, POST /usuarios
	linCAS                  // PUT /usuarios/{id} with If-Match
)

// linInput is one call. Key is the path below the API (config/x, usuarios/id):
// the history is partitioned by it.
type linInput struct {
	Key     string
	Kind    linKind
	Value   string // written value (unique in a run)
	IfMatch int64  // the revision a CAS expects
}

// linOutput is its answer. Unknown: the call timed out, failed in transit or got a
// 5xx, so it may or may not have taken effect (its Return is +inf).
type linOutput struct {
	Unknown bool
	Found   bool   // read: the key exists
	Value   string // read: the value
	Rev     int64  // read of a user: ETag; write/CAS: the revision that wrote it
	Stale   bool   // CAS: 412
}

// register is a key's state: its value and the mod_revision of its last write.
// After a write of unknown outcome the new revision is unknown (Pinned false) but
// greater than Floor; the first answer that shows it pins it.
type register struct {
	Found  bool
	Value  string
	Rev    int64
	Pinned bool
	Floor  int64
}

// revFloor is a revision every later write must exceed.
func (s register) revFloor() int64 {
	if s.Pinned {
		return s.Rev
	}
	return s.Floor
}

// at tells whether the register may be at revision rev, and pins it there.
func (s register) at(rev int64) (bool, register) {
	if s.Pinned {
		return s.Rev == rev, s
	}
	if rev <= s.Floor {
		return false, s
	}
	s.Rev, s.Pinned = rev, true
	return true, s
}

func stepRegister(st, in, out any) (bool, any) {
	s, i, o := st.(register), in.(linInput), out.(linOutput)
	written := register{Found: true, Value: i.Value, Rev: o.Rev, Pinned: true}
	switch i.Kind {
	case linRead:
		if o.Unknown {
			return true, s
		}
		if o.Found != s.Found || o.Value != s.Value {
			return false, s
		}
		if o.Rev == 0 { // configuration reads carry no revision
			return true, s
		}
		return s.at(o.Rev)
	case linWrite:
		if o.Unknown {
			// Applied now; "never applied" is the same op linearized last (Return is +inf).
			return true, register{Found: true, Value: i.Value, Floor: s.revFloor()}
		}
		// Revisions strictly increase in the order writes take effect.
		return o.Rev > s.revFloor(), written
	case linCAS:
		if !s.Found {
			return false, s
		}
		if o.Unknown {
			if ok, _ := s.at(i.IfMatch); ok {
				return true, register{Found: true, Value: i.Value, Floor: i.IfMatch}
			}
			return true, s
		}
		if o.Stale {
			// Stale iff the revision differs; an unpinned revision could be anything but the
			// one a later answer shows (not tracked: the model is lenient there, never strict).
			return !s.Pinned || s.Rev != i.IfMatch, s
		}
		ok, _ := s.at(i.IfMatch)
		return ok && o.Rev > i.IfMatch, written
	}
	return false, s
}

var registerModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(linInput).Key
			if byKey[k] == nil {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		parts := make([][]porcupine.Operation, len(keys))
		for i, k := range keys {
			parts[i] = byKey[k]
		}
		return parts
	},
	Init: func() any { return register{Pinned: true} },
	Step: stepRegister,
	DescribeOperation: func(in, out any) string {
		i, o := in.(linInput), out.(linOutput)
		res := fmt.Sprintf("%q@%d", o.Value, o.Rev)
		switch {
		case o.Unknown:
			res = "?"
		case o.Stale:
			res = "412"
		case i.Kind == linRead && !o.Found:
			res = "404"
		case i.Kind != linRead:
			res = fmt.Sprintf("@%d", o.Rev)
		}
		switch i.Kind {
		case linRead:
			return fmt.Sprintf("get(%s) -> %s", i.Key, res)
		case linWrite:
			return fmt.Sprintf("put(%s, %q) -> %s", i.Key, i.Value, res)
		}
		return fmt.Sprintf("cas(%s, @%d, %q) -> %s", i.Key, i.IfMatch, i.Value, res)
	},
	DescribeState: func(st any) string {
		s := st.(register)
		if !s.Found {
			return "(none)"
		}
		if !s.Pinned {
			return fmt.Sprintf("%q@>%d", s.Value, s.Floor)
		}
		return fmt.Sprintf("%q@%d", s.Value, s.Rev)
	},
}

// linRecorder runs calls against the API and keeps the history.
type linRecorder struct {
	begin  time.Time
	client *http.Client
	mu     sync.Mutex
	ops    []porcupine.Operation
	odd    []string       // answers outside the contract
	served []atomic.Int64 // definite answers per member
}

func newLinRecorder(members int) *linRecorder {
	return &linRecorder{
		begin:  time.Now(),
		client: &http.Client{Timeout: 3 * time.Second}, // REQUEST_TIMEOUT is 2s in clusterEnvs
		served: make([]atomic.Int64, members),
	}
}

func (r *linRecorder) now() int64 { return int64(time.Since(r.begin)) }

// do sends one call to the member at apis[m] and records it. It reports false when
// the member gave no definite answer (the caller then moves to another member).
func (r *linRecorder) do(clientID int, apis []string, m int, in linInput) (linOutput, bool) {
	method, body := "GET", ""
	switch in.Kind {
	case linWrite:
		method, body = "PUT", fmt.Sprintf(`{"valor":%q}`, in.Value)
		if in.Key == "usuarios" {
			method, body = "POST", fmt.Sprintf(`{"nome":%q}`, in.Value)
		}
	case linCAS:
		method, body = "PUT", fmt.Sprintf(`{"nome":%q}`, in.Value)
	}
	req, _ := http.NewRequest(method, apis[m]+"/"+in.Key, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if in.Kind == linCAS {
		req.Header.Set("If-Match", etag(in.IfMatch))
	}
	call := r.now()
	out, definite, err := r.send(req, in)
	ret := r.now()
	switch {
	case definite:
		r.served[m].Add(1)
	case errors.Is(err, syscall.ECONNREFUSED):
		return out, false // never reached a server: no effect, nothing to record
	case in.Kind == linRead:
		return out, false // a read of unknown outcome changes nothing: leave it out
	default:
		out, ret = linOutput{Unknown: true}, math.MaxInt64
	}
	if in.Key == "usuarios" && definite { // a create: the history knows the user by its id
		in.Key += "/" + out.Value
	}
	r.mu.Lock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: clientID, Input: in, Call: call, Output: out, Return: ret})
	if err != nil && definite {
		r.odd = append(r.odd, fmt.Sprintf("%s %s: %v", method, in.Key, err))
	}
	r.mu.Unlock()
	return out, definite
}

// send performs req and reads its answer; definite is false for transport errors and 5xx.
// An answer outside the contract is definite but comes with an error.
func (r *linRecorder) send(req *http.Request, in linInput) (out linOutput, definite bool, err error) {
	resp, err := r.client.Do(req)
	if err != nil {
		return out, false, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode >= 500 {
		return out, false, err
	}
	var doc map[string]any
	json.Unmarshal(raw, &doc)
	rev, _ := strconv.ParseInt(strings.Trim(resp.Header.Get("ETag"), `"`), 10, 64)
	code, config := resp.StatusCode, strings.HasPrefix(in.Key, "config/")
	switch {
	case in.Kind == linRead && code == 404:
		return out, true, nil
	case in.Kind == linRead && code == 200 && config:
		out.Value, _ = doc[strings.TrimPrefix(in.Key, "config/")].(string)
		out.Found = true
		return out, true, nil
	case in.Kind == linRead && code == 200:
		out.Value, _ = doc["nome"].(string)
		out.Found, out.Rev = true, rev
		return out, true, nil
	case in.Kind == linWrite && code == 200 && config:
		n, _ := doc["revisao"].(float64)
		out.Rev = int64(n)
		return out, true, nil
	case in.Kind == linWrite && code == 201: // POST /usuarios: Value carries the new id
		out.Value, _ = doc["id"].(string)
		out.Rev = rev
		return out, true, nil
	case in.Kind == linCAS && code == 200:
		out.Rev = rev
		return out, true, nil
	case in.Kind == linCAS && code == 412:
		out.Stale = true
		return out, true, nil
	}
	return out, true, fmt.Errorf("unexpected %d %s", code, raw)
}

// history is the recorded history, in no particular order.
func (r *linRecorder) history() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]porcupine.Operation(nil), r.ops...)
}

// setup creates the registers of a run: nUsers users and nConfig configuration keys,
// each through a recorded write so the history starts from "absent".
func (r *linRecorder) setup(t *testing.T, apis []string, name string, nUsers, nConfig int) []string {
	t.Helper()
	var keys []string
	for i := range nUsers + nConfig {
		in := linInput{Key: "usuarios", Kind: linWrite, Value: fmt.Sprintf("%s-init-%d", name, i)}
		if i >= nUsers {
			in.Key = fmt.Sprintf("config/%s-%d", name, i)
		}
		out, ok := r.do(0, apis, i%len(apis), in)
		if !ok {
			t.Fatalf("setup write %v: no definite answer", in)
		}
		if in.Key == "usuarios" {
			in.Key += "/" + out.Value
		}
		keys = append(keys, in.Key)
	}
	return keys
}

// run starts n clients doing random reads, writes and CASes on keys until stop is closed.
// Client i works against member i%len(apis); when that gives no definite answer it
// moves to the next member for a while.
func (r *linRecorder) run(apis []string, keys []string, n int, stop <-chan struct{}) (wait func()) {
	var wg sync.WaitGroup
	for id := range n {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
			home := id % len(apis)
			m, away := home, time.Time{}
			etags := map[string]int64{} // the revision this client last saw of each user
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				key := keys[rng.IntN(len(keys))]
				in := linInput{Key: key, Value: fmt.Sprintf("c%d-%d", id, seq)}
				user := strings.HasPrefix(key, "usuarios/")
				switch {
				case rng.IntN(2) == 0 || (user && etags[key] == 0):
					in.Kind = linRead
				case user:
					in.Kind, in.IfMatch = linCAS, etags[key]
				default:
					in.Kind = linWrite
				}
				if m != home && time.Since(away) > 500*time.Millisecond {
					m = home // back to its own member, to find it restarted
				}
				out, ok := r.do(id+1, apis, m, in)
				if !ok {
					m, away = (m+1)%len(apis), time.Now()
					select {
					case <-stop:
					case <-time.After(50 * time.Millisecond):
					}
					continue
				}
				if user {
					etags[key] = out.Rev // 0 after a 412: read again before the next CAS
				}
			}
		})
	}
	return wg.Wait
}

// checkHistory runs porcupine on the recorded history.
func (r *linRecorder) checkHistory(t *testing.T, name string) (porcupine.CheckResult, porcupine.LinearizationInfo) {
	t.Helper()
	ops := r.history()
	began := time.Now()
	res, info := porcupine.CheckOperationsVerbose(registerModel, ops, 30*time.Second)
	var reads, writes, cas, stale, unknown int
	for _, op := range ops {
		in, out := op.Input.(linInput), op.Output.(linOutput)
		switch {
		case out.Unknown:
			unknown++
		case in.Kind == linRead:
			reads++
		case in.Kind == linWrite:
			writes++
		case out.Stale:
			stale++
		default:
			cas++
		}
	}
	t.Logf("%s: %d reads, %d writes, %d CAS done and %d refused (412), %d of unknown outcome; checked in %s: %s",
		name, reads, writes, cas, stale, unknown, time.Since(began).Round(time.Millisecond), res)
	return res, info
}

// verdict fails the test on an answer outside the contract or a history that
// is not linearizable (writing porcupine's visualization of it), once the
// run has stopped.
func (r *linRecorder) verdict(t *testing.T, name string) {
	t.Helper()
	r.mu.Lock()
	odd := r.odd
	r.mu.Unlock()
	for _, o := range odd {
		t.Errorf("answer outside the contract: %s", o)
	}
	res, info := r.checkHistory(t, name)
	if res != porcupine.Ok {
		file := filepath.Join(os.TempDir(), "etcdapi-linearizability-"+name+".html")
		if err := porcupine.VisualizePath(registerModel, info, file); err == nil {
			t.Logf("%s: the history and its longest linearizations: %s", name, file)
		}
	}
	switch res {
	case porcupine.Ok:
		t.Logf("%s: linearizable", name)
	case porcupine.Illegal:
		t.Fatalf("%s: the history is NOT linearizable", name)
	default:
		t.Fatalf("%s: the checker timed out (%s): linearizability neither shown nor refuted", name, res)
	}
}

// await waits until counted() reaches n and at least d has passed, failing the test after 20 s.
func (r *linRecorder) await(t *testing.T, what string, d time.Duration, n int64, counted func() int64) {
	t.Helper()
	began := time.Now()
	for counted() < n || time.Since(began) < d {
		if time.Since(began) > 20*time.Second {
			t.Fatalf("%s: %d answers in 20s, want %d", what, counted(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *linRecorder) total() int64 {
	var n int64
	for i := range r.served {
		n += r.served[i].Load()
	}
	return n
}

func TestLinearizabilityWithMembersKilledAndRestarted(t *testing.T) {
	envs := clusterEnvs(t, 3)
	procs := make([]*proc, 3)
	apis := make([]string, 3)
	for i, env := range envs {
		procs[i] = start(t, env)
		apis[i] = procs[i].API
	}
	for _, p := range procs {
		waitReady(t, p)
	}
	leader := func() int {
		for i, p := range procs {
			if p == nil {
				continue
			}
			var name string
			for deadline := time.Now().Add(10 * time.Second); name == "" && time.Now().Before(deadline); {
				if name = leaderOf(t, p); name == "" {
					time.Sleep(100 * time.Millisecond)
				}
			}
			for j := range procs {
				if name == fmt.Sprintf("n%d", j) {
					return j
				}
			}
			t.Fatalf("member %d does not know the leader", i)
		}
		return -1
	}

	// Scenarios run one after the other on the same cluster (no subtests: a restarted
	// member must outlive its scenario), each on fresh keys with its own history.
	for _, sc := range []struct {
		name   string
		victim func() int
	}{
		{"leader", leader},
		{"follower", func() int { return (leader() + 1) % 3 }},
	} {
		func() {
			rec := newLinRecorder(len(apis))
			keys := rec.setup(t, apis, sc.name, 2, 2)
			stop := make(chan struct{})
			wait := rec.run(apis, keys, 6, stop)
			halt := sync.OnceFunc(func() { close(stop); wait() })
			defer halt()
			rec.await(t, sc.name+", before the kill", 2*time.Second, 300, rec.total)
			v := sc.victim()
			t.Logf("%s: SIGKILL n%d after %d answers", sc.name, v, rec.total())
			procs[v].cmd.Process.Kill() // a crash, mid-run
			<-procs[v].done
			procs[v].done <- nil
			rec.await(t, sc.name+", while a member is down", 3*time.Second, rec.total()+300, rec.total)

			procs[v] = start(t, envs[v]) // on its data dir, on the same ports
			waitReady(t, procs[v])
			rec.await(t, sc.name+", from the restarted member", 3*time.Second, rec.served[v].Load()+150, rec.served[v].Load)
			halt()
			rec.verdict(t, sc.name)
		}()
	}
}

// The same checker with the faults of SPEC §6, in etcdapi demo: the leader
// isolated, a follower isolated, the leader paused. Clients talk to every
// member directly and, two of them, through the supervisor's one URL (which
// routes around the fault and never sends a write twice). Each fault is shown
// to have happened (the isolated member's own status has no leader, the
// paused process is in state T) and every history must be linearizable.
func TestLinearizabilityWithPartitionsAndPausesInTheDemo(t *testing.T) {
	p, _ := startDemo(t)
	ms := demoMembers(t, p)
	cli := statusClient(t, ms)
	act := func(name, action string) {
		t.Helper()
		if code, body := request[obj](t, "POST", p.API+"/demo/membros/"+name+"/"+action, ""); code != 200 {
			t.Fatalf("%s %s: %d %v", action, name, code, body)
		}
	}
	for _, sc := range []struct {
		name, do, undo string
		leader         bool
	}{
		{"isolated-leader", "isolar", "reconectar", true},
		{"isolated-follower", "isolar", "reconectar", false},
		{"paused-leader", "pausar", "retomar", true},
	} {
		func() {
			leader, others := leaderAndOthers(t, p)
			victim := leader
			if !sc.leader {
				victim = others[0]
			}
			all := append([]demoMember{leader}, others...)
			apis := []string{p.API} // index 0: the supervisor
			v := 0
			for _, m := range all {
				if m.Name == victim.Name {
					v = len(apis)
				}
				apis = append(apis, m.API)
			}
			rec := newLinRecorder(len(apis))
			keys := rec.setup(t, apis[:1], sc.name, 2, 2)
			stop := make(chan struct{})
			wait := rec.run(apis, keys, 8, stop)
			halt := sync.OnceFunc(func() { close(stop); wait() })
			defer halt()
			rec.await(t, sc.name+", before the fault", time.Second, 200, rec.total)

			before, err := memberStatus(cli, victim)
			if err != nil {
				t.Fatal(err)
			}
			act(victim.Name, sc.do)
			switch sc.do {
			case "isolar":
				within(t, 3*time.Second, victim.Name+"'s own status without a leader", func() bool {
					st, err := memberStatus(cli, victim)
					return err == nil && st.Leader == 0
				})
			case "pausar":
				within(t, time.Second, victim.Name+" stopped (state T)", func() bool {
					return paused(*victim.PID)
				})
			}
			if sc.leader {
				_, took := newLeaderSeen(t, cli, others[0], before.Leader)
				t.Logf("%s: the majority follows a new leader (seen %s after the fault was)", sc.name, took.Round(time.Millisecond))
			}
			supervised := rec.served[0].Load() // answers through the supervisor, once the fault is proven
			rec.await(t, sc.name+", during the fault", 2*time.Second, rec.total()+200, rec.total)
			rec.await(t, sc.name+", through the supervisor during the fault", 2*time.Second, supervised+50, rec.served[0].Load)
			act(victim.Name, sc.undo)
			rec.await(t, sc.name+", from the member given back", time.Second, rec.served[v].Load()+100, rec.served[v].Load)
			halt()
			t.Logf("%s: %d answers through the supervisor", sc.name, rec.served[0].Load())
			rec.verdict(t, sc.name)
		}()
	}
}

// The model itself, on small histories whose answer is known.
func TestLinearizabilityModel(t *testing.T) {
	const inf = math.MaxInt64
	c, u := "config/k", "usuarios/u"
	op := func(call, ret int64, in linInput, out linOutput) porcupine.Operation {
		if ret == inf {
			out = linOutput{Unknown: true}
		}
		return porcupine.Operation{Input: in, Output: out, Call: call, Return: ret}
	}
	put := func(call, ret int64, key, v string, rev int64) porcupine.Operation {
		return op(call, ret, linInput{Key: key, Kind: linWrite, Value: v}, linOutput{Rev: rev})
	}
	get := func(call, ret int64, key, v string, rev int64) porcupine.Operation {
		return op(call, ret, linInput{Key: key, Kind: linRead}, linOutput{Found: true, Value: v, Rev: rev})
	}
	cas := func(call, ret int64, ifMatch int64, v string, out linOutput) porcupine.Operation {
		return op(call, ret, linInput{Key: u, Kind: linCAS, Value: v, IfMatch: ifMatch}, out)
	}
	for _, tc := range []struct {
		name string
		want bool
		h    []porcupine.Operation
	}{
		{"unknown write seen", true, []porcupine.Operation{put(0, 1, c, "a", 5), put(2, inf, c, "b", 0), get(3, 4, c, "b", 0), get(5, 6, c, "b", 0)}},
		{"unknown write seen later", true, []porcupine.Operation{put(0, 1, c, "a", 5), put(2, inf, c, "b", 0), get(3, 4, c, "a", 0), get(5, 6, c, "b", 0)}},
		{"unknown write never applied", true, []porcupine.Operation{put(0, 1, c, "a", 5), put(2, inf, c, "b", 0), put(3, 4, c, "c", 9), get(5, 6, c, "c", 0)}},
		{"value never written", false, []porcupine.Operation{put(0, 1, c, "a", 5), get(2, 3, c, "b", 0)}},
		{"stale read", false, []porcupine.Operation{put(0, 1, c, "a", 5), put(2, 3, c, "b", 6), get(4, 5, c, "b", 0), get(6, 7, c, "a", 0)}},
		{"revision goes back", false, []porcupine.Operation{put(0, 1, c, "a", 5), put(2, 3, c, "b", 4)}},
		{"cas", true, []porcupine.Operation{put(0, 1, u, "a", 5), cas(2, 3, 5, "b", linOutput{Rev: 7}), get(4, 5, u, "b", 7), cas(6, 7, 5, "c", linOutput{Stale: true})}},
		{"lost update", false, []porcupine.Operation{put(0, 1, u, "a", 5), cas(2, 3, 5, "b", linOutput{Rev: 7}), cas(4, 5, 5, "c", linOutput{Rev: 8})}},
		{"412 on the current revision", false, []porcupine.Operation{put(0, 1, u, "a", 5), cas(2, 3, 5, "b", linOutput{Stale: true})}},
		{"unknown cas, then cas on what it wrote", true, []porcupine.Operation{put(0, 1, u, "a", 5), cas(2, inf, 5, "b", linOutput{}), get(3, 4, u, "b", 9), cas(5, 6, 9, "c", linOutput{Rev: 10}), get(7, 8, u, "c", 10)}},
		{"revision changes without a write", false, []porcupine.Operation{put(0, 1, u, "a", 5), put(2, inf, u, "b", 0), get(3, 4, u, "b", 9), get(5, 6, u, "b", 11)}},
	} {
		if got := porcupine.CheckOperations(registerModel, tc.h); got != tc.want {
			t.Errorf("%s: linearizable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The same workload against a fake whose third member is wrong: it serves reads 200 ms
// stale (as a follower's serializable read can be), or its compare-and-set ignores
// If-Match (a lost update). The checker must reject both histories.
func TestLinearizabilityCheckerCatchesViolations(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  fakeMember
	}{
		{"stale-reads", fakeMember{lag: 200 * time.Millisecond}},
		{"lost-updates", fakeMember{blindCAS: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeRegisters{versions: map[string][]fakeVersion{}}
			apis := make([]string, 3)
			for i := range apis {
				m := fakeMember{}
				if i == 2 {
					m = tc.bad
				}
				srv := httptest.NewServer(fake.handler(m))
				t.Cleanup(srv.Close)
				apis[i] = srv.URL
			}
			rec := newLinRecorder(len(apis))
			keys := rec.setup(t, apis, "fake", 2, 2)
			stop := make(chan struct{})
			wait := rec.run(apis, keys, 6, stop)
			halt := sync.OnceFunc(func() { close(stop); wait() })
			defer halt()
			rec.await(t, tc.name, time.Second, 500, rec.served[2].Load) // answers from the bad member
			halt()
			if res, _ := rec.checkHistory(t, tc.name); res != porcupine.Illegal {
				t.Fatalf("%s: checker says %s, want %s", tc.name, res, porcupine.Illegal)
			}
		})
	}
}

// fakeMember is how one member of the fake misbehaves.
type fakeMember struct {
	lag      time.Duration // reads return the newest version at least this old
	blindCAS bool          // PUT /usuarios/{id} writes whatever If-Match says
}

type fakeVersion struct {
	value string
	rev   int64
	at    time.Time
}

// fakeRegisters serves the routes the workload uses from memory, keeping every version.
type fakeRegisters struct {
	mu       sync.Mutex
	rev      int64
	users    int
	versions map[string][]fakeVersion
}

func (f *fakeRegisters) put(key, value string) int64 {
	f.rev++
	f.versions[key] = append(f.versions[key], fakeVersion{value, f.rev, time.Now()})
	return f.rev
}

// read returns the newest version at least lag old (the oldest one if none is).
func (f *fakeRegisters) read(key string, lag time.Duration) (fakeVersion, bool) {
	vs := f.versions[key]
	if len(vs) == 0 {
		return fakeVersion{}, false
	}
	for i := len(vs) - 1; i >= 0; i-- {
		if time.Since(vs[i].at) >= lag {
			return vs[i], true
		}
	}
	return vs[0], true
}

func (f *fakeRegisters) handler(m fakeMember) http.Handler {
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter, code int, rev int64, body any) {
		if rev > 0 {
			w.Header().Set("ETag", etag(rev))
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(body)
	}
	decode := func(r *http.Request) map[string]string {
		var v map[string]string
		json.NewDecoder(r.Body).Decode(&v)
		return v
	}
	mux.HandleFunc("GET /{area}/{key}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		v, ok := f.read(r.URL.Path[1:], m.lag)
		f.mu.Unlock()
		switch {
		case !ok:
			answer(w, 404, 0, obj{"erro": "não encontrado"})
		case r.PathValue("area") == "config":
			answer(w, 200, 0, obj{r.PathValue("key"): v.value})
		default:
			answer(w, 200, v.rev, obj{"nome": v.value})
		}
	})
	mux.HandleFunc("PUT /config/{key}", func(w http.ResponseWriter, r *http.Request) {
		body := decode(r)
		f.mu.Lock()
		defer f.mu.Unlock()
		answer(w, 200, 0, obj{"revisao": f.put(r.URL.Path[1:], body["valor"])})
	})
	mux.HandleFunc("POST /usuarios", func(w http.ResponseWriter, r *http.Request) {
		body := decode(r)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.users++
		id := fmt.Sprint(f.users)
		answer(w, 201, f.put("usuarios/"+id, body["nome"]), obj{"id": id})
	})
	mux.HandleFunc("PUT /usuarios/{id}", func(w http.ResponseWriter, r *http.Request) {
		body := decode(r)
		f.mu.Lock()
		defer f.mu.Unlock()
		key := r.URL.Path[1:]
		cur, _ := f.read(key, 0)
		if want, _ := strconv.ParseInt(strings.Trim(r.Header.Get("If-Match"), `"`), 10, 64); want != cur.rev && !m.blindCAS {
			answer(w, 412, 0, obj{"erro": "Versão desatualizada"})
			return
		}
		answer(w, 200, f.put(key, body["nome"]), obj{"id": r.PathValue("id")})
	})
	return mux
}

// etag is a revision as the API writes it in ETag and reads it in If-Match.
func etag(rev int64) string { return `"` + strconv.FormatInt(rev, 10) + `"` }
