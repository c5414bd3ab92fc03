package store

import (
	"context"
	"net"
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

// TestAloneReadsEtcdsMembership: a member restarted alone in its cluster is
// recognised from its data directory, so it elects itself with short ticks.
func TestAloneReadsEtcdsMembership(t *testing.T) {
	dir := t.TempDir()
	if alone(dir) {
		t.Fatal("an empty data dir counts as a lone member")
	}
	cfg := Config{Name: "solo", DataDir: dir, ListenClientURLs: freeURL(t), ListenPeerURLs: freeURL(t),
		InitialClusterState: "new", InitialClusterToken: "t", QuotaBytes: 1 << 30,
		AutoCompactionRetention: time.Hour, StartupTimeout: 30 * time.Second}
	m, err := startMember(context.Background(), cfg, zap.NewNop(), new(atomic.Bool))
	if err != nil {
		t.Fatal(err)
	}
	m.close()
	if !alone(dir) {
		t.Fatal("a member that was alone is not recognised as alone")
	}
}
