package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"etcdapi/internal/testenv"
)

// memberStatus asks one member for etcd's own status of itself (its raft
// term, index, leader and revision), within a second.
func memberStatus(cli *clientv3.Client, m demoMember) (*clientv3.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return cli.Status(ctx, m.Client)
}

// within polls cond every 20 ms for at most d, and tells how long it took.
func within(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	began := time.Now()
	for !cond() {
		if time.Since(began) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(began)
}

func statusClient(t *testing.T, ms []demoMember) *clientv3.Client {
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.Client)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// leaderAndOthers asks the supervisor for its members until one leads (a
// fresh cluster may still be electing), and splits them.
func leaderAndOthers(t *testing.T, p *proc) (leader demoMember, others []demoMember) {
	t.Helper()
	within(t, 5*time.Second, "a leader", func() bool {
		leader, others = demoMember{}, nil
		for _, m := range demoMembers(t, p) {
			if m.Leader {
				leader = m
			} else {
				others = append(others, m)
			}
		}
		return leader.Name != ""
	})
	return leader, others
}

// newLeaderSeen waits at most 3 s for member m's own etcd status to name a
// leader other than old, and returns it and how long that took.
func newLeaderSeen(t *testing.T, cli *clientv3.Client, m demoMember, old uint64) (leader uint64, took time.Duration) {
	t.Helper()
	took = within(t, 3*time.Second, "a new leader at the majority", func() bool {
		st, err := memberStatus(cli, m)
		if err == nil && st.Leader != 0 && st.Leader != old {
			leader = st.Leader
			return true
		}
		return false
	})
	return leader, took
}

// writesGoOn sends n writes through the supervisor's one URL: each must succeed.
func writesGoOn(t *testing.T, p *proc, key string, n int) {
	t.Helper()
	for i := range n {
		if code, body := request[obj](t, "PUT", p.API+"/config/"+key, fmt.Sprintf(`{"valor":%d}`, i)); code != 200 {
			t.Fatalf("write %d through the supervisor: %d %v", i, code, body)
		}
	}
}

// A leader cut off from the others steps down by itself; the majority elects a
// new one and goes on; the isolated member refuses to answer rather than answer
// wrong, its raft index stands still; reconnected, it follows the current
// leader at the cluster's term and catches up.
func TestDemoIsolatedLeaderStepsDownAndComesBackAsAFollower(t *testing.T) {
	p, _ := startDemo(t)
	ms := demoMembers(t, p)
	cli := statusClient(t, ms)
	old, others := leaderAndOthers(t, p)
	writesGoOn(t, p, "antes-da-particao", 3)
	// A lock waiter on the member about to be cut off: once its member has had
	// no leader for three election timeouts, etcd ends the waiter's watch (it
	// requires a leader), and the waiter hears 503, not 409 "place lost" nor a
	// long silence.
	if code, body := request[obj](t, "POST", others[0].API+"/lock/particao", `{"holder":"dono","ttl":60}`); code != 200 {
		t.Fatalf("lock: %d %v", code, body)
	}
	type answer struct {
		code int // 0: no answer
		at   time.Time
	}
	waiter := make(chan answer, 1)
	go func() { // no t.Fatal here
		resp, err := http.Post(old.API+"/lock/particao", "application/json", strings.NewReader(`{"holder":"isolado","ttl":60,"aguardar":60}`))
		if err != nil {
			waiter <- answer{at: time.Now()}
			return
		}
		resp.Body.Close()
		waiter <- answer{resp.StatusCode, time.Now()}
	}()
	within(t, 5*time.Second, "the waiter in line", func() bool {
		_, l := request[obj](t, "GET", others[0].API+"/lock/particao", "")
		return l["fila"] == 1.0
	})

	isolated := time.Now()
	if code, body := request[obj](t, "POST", p.API+"/demo/membros/"+old.Name+"/isolar", ""); code != 200 {
		t.Fatalf("isolar: %d %v", code, body)
	}
	if code, _ := request[obj](t, "POST", p.API+"/demo/membros/"+old.Name+"/isolar", ""); code != 409 {
		t.Fatalf("isolar again: %d, want 409", code)
	}
	if code, _ := request[obj](t, "POST", p.API+"/demo/membros/"+others[0].Name+"/reconectar", ""); code != 409 {
		t.Fatalf("reconectar a member not isolated: %d, want 409", code)
	}
	oldStatus, err := memberStatus(cli, old)
	if err != nil {
		t.Fatal(err)
	}
	newLeader, took := newLeaderSeen(t, cli, others[0], oldStatus.Header.MemberId)
	t.Logf("new leader %x %s after isolating the leader", newLeader, took.Round(time.Millisecond))
	for _, m := range demoMembers(t, p) {
		if m.Name == old.Name && m.State != "isolado" {
			t.Fatalf("isolated member shown as %q", m.State)
		}
	}
	writesGoOn(t, p, "durante-a-particao", 10)

	// The isolated member: 503 to a read and a write within REQUEST_TIMEOUT (2 s) + 1 s.
	for _, method := range []string{"GET", "PUT"} {
		began := time.Now()
		code, _ := request[obj](t, method, old.API+"/config/durante-a-particao", `{"valor":-1}`)
		if took := time.Since(began); code != 503 || took > 3*time.Second {
			t.Fatalf("%s on the isolated member: %d after %s, want 503 within 3 s", method, code, took)
		}
	}
	// etcd's own view: its raft index stood still while the majority's grew, and it has no leader.
	iso, err := memberStatus(cli, old)
	if err != nil {
		t.Fatal(err)
	}
	maj, err := memberStatus(cli, others[0])
	if err != nil {
		t.Fatal(err)
	}
	if iso.RaftIndex >= maj.RaftIndex || iso.Header.Revision >= maj.Header.Revision || iso.Leader == newLeader {
		t.Fatalf("isolated: index %d revision %d leader %x; majority: index %d revision %d leader %x",
			iso.RaftIndex, iso.Header.Revision, iso.Leader, maj.RaftIndex, maj.Header.Revision, maj.Leader)
	}
	if iso.Leader != 0 {
		t.Fatalf("the isolated member still sees a leader: %x", iso.Leader)
	}
	select {
	case a := <-waiter:
		if a.code != 503 || a.at.Before(isolated) {
			t.Fatalf("the lock waiter on the isolated member: %d %s after isolar, want 503 after it", a.code, a.at.Sub(isolated))
		}
		t.Logf("the lock waiter on the isolated member: 503 %s after isolar", a.at.Sub(isolated).Round(time.Millisecond))
	case <-time.After(30 * time.Second): // well short of its aguardar (60 s)
		t.Fatal("the lock waiter on the isolated member still waits 30 s on")
	}

	if code, body := request[obj](t, "POST", p.API+"/demo/membros/"+old.Name+"/reconectar", ""); code != 200 {
		t.Fatalf("reconectar: %d %v", code, body)
	}
	took = within(t, 5*time.Second, "the reconnected member following the leader, caught up", func() bool {
		s, err1 := memberStatus(cli, old)
		m, err2 := memberStatus(cli, others[0])
		return err1 == nil && err2 == nil && s.Leader == m.Leader && s.Leader == newLeader &&
			s.Header.RaftTerm == m.Header.RaftTerm && s.Header.Revision == m.Header.Revision
	})
	t.Logf("reconnected member caught up in %s", took.Round(time.Millisecond))
}

// A paused leader is replaced the same way; resumed, it follows the newer
// leader. A paused follower costs nothing. Stopped, paused and isolated
// members leave no process and no data behind the supervisor's SIGTERM.
func TestDemoPausedMembersAndSIGTERMWithEveryFault(t *testing.T) {
	p, _ := startDemo(t)
	ms := demoMembers(t, p)
	cli := statusClient(t, ms)
	old, others := leaderAndOthers(t, p)
	oldStatus, err := memberStatus(cli, old)
	if err != nil {
		t.Fatal(err)
	}

	if code, body := request[obj](t, "POST", p.API+"/demo/membros/"+old.Name+"/pausar", ""); code != 200 {
		t.Fatalf("pausar: %d %v", code, body)
	}
	within(t, 2*time.Second, "the paused leader stopped (state T)", func() bool { return paused(*old.PID) })
	newLeader, took := newLeaderSeen(t, cli, others[0], oldStatus.Header.MemberId)
	t.Logf("new leader %x %s after pausing the leader", newLeader, took.Round(time.Millisecond))
	writesGoOn(t, p, "durante-a-pausa", 10)
	if code, _ := request[obj](t, "POST", p.API+"/demo/membros/"+old.Name+"/retomar", ""); code != 200 {
		t.Fatalf("retomar: %d", code)
	}
	within(t, 5*time.Second, "the resumed member following the newer leader", func() bool {
		s, err1 := memberStatus(cli, old)
		m, err2 := memberStatus(cli, others[0])
		return err1 == nil && err2 == nil && s.Leader == newLeader && s.Header.Revision == m.Header.Revision
	})

	// A paused follower: writes go on.
	_, followers := leaderAndOthers(t, p)
	if code, _ := request[obj](t, "POST", p.API+"/demo/membros/"+followers[0].Name+"/pausar", ""); code != 200 {
		t.Fatalf("pausar a follower: %d", code)
	}
	within(t, 2*time.Second, "the paused follower stopped (state T)", func() bool { return paused(*followers[0].PID) })
	writesGoOn(t, p, "seguidor-pausado", 10)

	// SIGTERM with one member paused, one isolated and one stopped: nothing
	// left behind, neither processes nor data.
	if code, _ := request[obj](t, "POST", p.API+"/demo/membros/"+followers[1].Name+"/isolar", ""); code != 200 {
		t.Fatalf("isolar: %d", code)
	}
	within(t, 5*time.Second, followers[1].Name+" isolated: its own status shows no leader", func() bool {
		s, err := memberStatus(cli, followers[1])
		return err == nil && s.Leader == 0
	})
	for _, m := range ms {
		if m.Name != followers[0].Name && m.Name != followers[1].Name {
			if code, _ := request[obj](t, "POST", p.API+"/demo/membros/"+m.Name+"/parar", ""); code != 200 {
				t.Fatalf("parar: %d", code)
			}
		}
	}
	dir := ""
	for _, m := range demoMembers(t, p) {
		dir = strings.TrimSuffix(m.Dir, "/"+m.Name)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exit(t, 15*time.Second); code != 0 {
		t.Fatalf("supervisor exit %d", code)
	}
	for _, m := range ms {
		if alive(*m.PID) {
			t.Fatalf("member %s (pid %d) outlived the supervisor", m.Name, *m.PID)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("data %s left behind: %v", dir, err)
	}
}

// The lock-set run (testenv.RunHolderSet) for a lock, an election and a
// semaphore at once, through the supervisor's one URL while
// the leader is isolated, paused and stopped in turn: whatever the faults,
// every acknowledged append is kept and tokens strictly increase.
func TestDemoLockSetUnderPartitionsPausesAndCrashes(t *testing.T) {
	p, _ := startDemo(t)
	cli := statusClient(t, demoMembers(t, p))
	stop := make(chan struct{})
	type fault struct {
		member, act, undo string
		in, out           int  // the supervisor's answers to the fault and to its undo
		proven, undone    bool // seen to happen, as etcd and the kernel see it; and to be undone
		midRun            bool // made while the workload ran
	}
	faults := make(chan fault, 100)
	var nemesis sync.WaitGroup
	nemesis.Go(func() {
		defer close(faults)
		client := &http.Client{Timeout: 20 * time.Second}
		act := func(name, action string) int {
			resp, err := client.Post(p.API+"/demo/membros/"+name+"/"+action, "", nil)
			if err != nil {
				return 0
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		for made := 0; ; { // until the workload ends, and each kind of fault was made once at least
			midRun := true
			select {
			case <-stop:
				if made >= 3 {
					return
				}
				midRun = false
			default:
			}
			time.Sleep(time.Second)
			resp, err := client.Get(p.API + "/demo/membros")
			if err != nil {
				continue
			}
			var ms []demoMember
			json.NewDecoder(resp.Body).Decode(&ms)
			resp.Body.Close()
			var target demoMember
			for _, m := range ms {
				if m.Leader && m.PID != nil {
					target = m
				}
			}
			if target.Name == "" {
				continue
			}
			pair := [][2]string{{"isolar", "reconectar"}, {"pausar", "retomar"}, {"parar", "iniciar"}}[made%3]
			f := fault{member: target.Name, act: pair[0], undo: pair[1], midRun: midRun, in: act(target.Name, pair[0])}
			// The fault happened: the isolated member's own status shows no
			// leader, the paused process is stopped (T), the killed one is gone.
			// It holds 1.5 s at least, and until it is shown (10 s at most).
			for began := time.Now(); time.Since(began) < 1500*time.Millisecond || !f.proven && time.Since(began) < 10*time.Second; time.Sleep(50 * time.Millisecond) {
				st, err := memberStatus(cli, target)
				f.proven = f.proven || (f.act == "isolar" && err == nil && st.Leader == 0) ||
					(f.act == "pausar" && paused(*target.PID)) || (f.act == "parar" && !alive(*target.PID))
			}
			f.out = act(target.Name, pair[1])
			// Undone: the member follows a leader again, by its own status.
			for began := time.Now(); !f.undone && time.Since(began) < 10*time.Second; time.Sleep(50 * time.Millisecond) {
				st, err := memberStatus(cli, target)
				f.undone = err == nil && st.Leader != 0
			}
			faults <- f
			made++
		}
	})
	// A lock, an election's leader and a semaphore's one place, side by side.
	kinds := []testenv.Kind{testenv.Lock, testenv.Election, testenv.Semaphore}
	runs := make([]testenv.LockSet, len(kinds))
	errs := make([]error, len(kinds))
	var workload sync.WaitGroup
	for i, kind := range kinds {
		workload.Go(func() {
			// The guard alone (no condition on the list's revision) stands
			// between a stale holder and the list: a broken guard loses appends.
			runs[i], errs[i] = testenv.RunHolderSet(p.API, kind, 6, 3, func(client, round int) time.Duration {
				if client == 0 && round == 1 {
					return 6 * time.Second
				}
				return 0
			})
		})
	}
	workload.Wait()
	close(stop)
	nemesis.Wait()
	var done []string
	made, midRun := map[string]bool{}, 0
	for f := range faults {
		done = append(done, fmt.Sprintf("%s %s: %d, %s: %d", f.member, f.act, f.in, f.undo, f.out))
		made[f.act] = true
		if f.midRun {
			midRun++
		}
		if f.in != 200 || f.out != 200 || !f.proven || !f.undone {
			t.Errorf("fault not applied, not seen to happen or not undone: %+v", f)
		}
	}
	if len(made) != 3 || midRun < 2 {
		t.Errorf("faults made: %v (%d while the workload ran), want an isolation, a pause and a crash, two of them while it ran", done, midRun)
	}
	t.Logf("faults: %v, %d while the workload ran", done, midRun)
	for i, run := range runs {
		if errs[i] != nil {
			t.Fatalf("%s: %v", kinds[i].Guard, errs[i])
		}
		if err := run.Check(); err != nil {
			t.Fatalf("%s: %v", kinds[i].Guard, err)
		}
		if len(run.Acked) == 0 {
			t.Fatalf("%s: no append acknowledged: the run proves nothing", kinds[i].Guard)
		}
		t.Logf("%s under faults: %d appends acknowledged, %d refused, %d without a clear answer, list of %d", kinds[i].Guard, len(run.Acked), run.Refused, run.Failed, len(run.Final))
	}
}
