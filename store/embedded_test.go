package store

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

func freeURL(t *testing.T) URLs {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var u URLs
	u.Decode("http://" + ln.Addr().String())
	return u
}

// startSolo starts a member alone in its cluster, in dir, and waits until it is ready.
func startSolo(t *testing.T, dir string) *member {
	t.Helper()
	cfg := Config{Name: "solo", DataDir: dir, ListenClientURLs: freeURL(t), ListenPeerURLs: freeURL(t),
		InitialClusterState: "new", InitialClusterToken: "t", QuotaBytes: 1 << 30,
		AutoCompactionRetention: time.Hour, StartupTimeout: 30 * time.Second}
	m, err := startMember(context.Background(), cfg, zap.NewNop(), new(atomic.Bool))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ready(context.Background(), cfg.StartupTimeout, func() {}); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestAloneReadsEtcdsMembership: a member restarted alone in its cluster is
// recognised from its data directory, so it elects itself with short ticks.
func TestAloneReadsEtcdsMembership(t *testing.T) {
	dir := t.TempDir()
	if alone(dir) {
		t.Fatal("an empty data dir counts as a lone member")
	}
	m := startSolo(t, dir)
	m.close()
	if !alone(dir) {
		t.Fatal("a member that was alone is not recognised as alone")
	}
}

// A lone member takes short raft ticks, unless the settings set the timing.
func TestALoneMemberKeepsTheTimingItWasGiven(t *testing.T) {
	for _, c := range []struct{ heartbeat, election, wantTick, wantElection uint }{
		{0, 0, 20, 200},
		{100, 1000, 20, 200}, // etcd's own defaults, as the settings' defaults give them
		{50, 600, 50, 600},
		{0, 600, 100, 600}, // the election timeout set alone: etcd's heartbeat stays
	} {
		cfg := Config{Name: "solo", DataDir: t.TempDir(), ListenClientURLs: freeURL(t), ListenPeerURLs: freeURL(t),
			InitialClusterState: "new", InitialClusterToken: "t", QuotaBytes: 1 << 30, HeartbeatMs: c.heartbeat, ElectionMs: c.election,
			AutoCompactionRetention: time.Hour, StartupTimeout: 30 * time.Second}
		m, err := startMember(context.Background(), cfg, zap.NewNop(), new(atomic.Bool))
		if err != nil {
			t.Fatal(err)
		}
		got := m.etcd.Config()
		m.close()
		if got.TickMs != c.wantTick || got.ElectionMs != c.wantElection {
			t.Fatalf("settings %d/%d: ticks %d/%d, want %d/%d", c.heartbeat, c.election, got.TickMs, got.ElectionMs, c.wantTick, c.wantElection)
		}
	}
}

// TestWALInSmallSegments: a restart decodes the log's segment that holds the
// last snapshot from its start, so the segments are small.
func TestWALInSmallSegments(t *testing.T) {
	dir := t.TempDir()
	m := startSolo(t, dir)
	defer m.close()
	cli := m.client()
	value := strings.Repeat("x", 256<<10)
	for i := range 12 { // 3 MB of log
		if _, err := cli.Put(context.Background(), fmt.Sprintf("k%d", i), value); err != nil {
			t.Fatal(err)
		}
	}
	segments, err := filepath.Glob(filepath.Join(dir, "member", "wal", "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	if len(segments) < 3 {
		t.Fatalf("3 MB of log in %d segments, want at least 3", len(segments))
	}
}

// TestStartMemberRestoresGCPercent: the collector runs less often only while
// etcd opens its store.
func TestStartMemberRestoresGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer startSolo(t, t.TempDir()).close()
	if gc := debug.SetGCPercent(100); gc != 100 {
		t.Fatalf("GC percent %d once the member started, want 100", gc)
	}
}

// Members starting at once share the raised GOGC; the last one restores it.
func TestLazyGCRestoresAfterOverlappingStarts(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	a := lazyGC()
	b := lazyGC()
	if gc := debug.SetGCPercent(200); gc != 200 {
		t.Fatalf("GC percent %d while members start, want 200", gc)
	}
	a()
	b()
	if gc := debug.SetGCPercent(100); gc != 100 {
		t.Fatalf("GC percent %d after overlapping starts, want 100", gc)
	}
}

// A GOGC the environment chose is the user's: starting a member leaves it.
func TestLazyGCLeavesAChosenGOGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(50))
	t.Setenv("GOGC", "50")
	restore := lazyGC()
	defer restore()
	if gc := debug.SetGCPercent(50); gc != 50 {
		t.Fatalf("GC percent %d while a member starts with GOGC=50, want 50", gc)
	}
}
