package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.uber.org/zap"
)

// etcd writes its log in 64 MB segments and, restarting, decodes every
// segment it kept and the one holding its last snapshot from the start:
// 100,000 users fit in the first segment, and that was 300 ms of a restart.
// In 1 MB segments (a cut every few thousand writes) it reads a few
// megabytes instead. Entries older than the last snapshot are never
// replayed.
func init() { wal.SegmentSizeBytes = 1 << 20 }

// Opening its store, etcd rebuilds its key index from the backend, allocating
// as it goes: with the collector running half as often, a restart over 100,000
// users is ready 40 ms sooner. The setting is the process's, so members
// starting at once raise it once and the last one restores it.
var gc struct {
	sync.Mutex
	starting int
	saved    int
}

// lazyGC raises GOGC to 200 (unless it is higher, or off, or the GOGC
// variable chose it) until the returned func is called.
func lazyGC() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	gc.Lock()
	defer gc.Unlock()
	if gc.starting == 0 {
		gc.saved = debug.SetGCPercent(200)
		if gc.saved < 0 || gc.saved > 200 {
			debug.SetGCPercent(gc.saved)
		}
	}
	gc.starting++
	return func() {
		gc.Lock()
		defer gc.Unlock()
		if gc.starting--; gc.starting == 0 {
			debug.SetGCPercent(gc.saved)
		}
	}
}

// member is the etcd member embedded in this process.
type member struct {
	etcd  *embed.Etcd
	dir   string
	lock  *fileutil.LockedFile
	quiet *atomic.Bool
	temp  bool
	fresh bool // a new member: its data directory held none
	// private: ETCD_LISTEN_CLIENT_URLS=off, so the member serves clients only
	// on a unix socket in its data directory, for this process's watches.
	private bool
}

func startMember(ctx context.Context, cfg Config, zl *zap.Logger, quiet *atomic.Bool) (*member, error) {
	m := &member{dir: cfg.DataDir, quiet: quiet, temp: cfg.Ephemeral} // Open made an ephemeral one
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	// etcd itself would wait forever on bbolt's lock: take ours first, without waiting.
	lock, err := fileutil.TryLockFile(filepath.Join(m.dir, "etcdapi.lock"), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		m.removeTemp()
		if errors.Is(err, fileutil.ErrLocked) {
			return nil, fmt.Errorf("data directory %s is in use by another etcdapi process", m.dir)
		}
		return nil, fmt.Errorf("data directory %s: %w", m.dir, err)
	}
	m.lock = lock

	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = m.dir
	ec.ListenClientUrls = cfg.ListenClientURLs
	ec.AdvertiseClientUrls = cfg.AdvertiseClientURLs
	if len(ec.ListenClientUrls) == 0 {
		// No client port for others; watches still need a gRPC connection (the
		// in-process one deadlocks under load, see watchClient): a socket only
		// this user can reach.
		abs, err := filepath.Abs(filepath.Join(m.dir, "etcdapi.sock"))
		if err != nil {
			m.close()
			return nil, err
		}
		os.Remove(abs) // left by a process that was killed
		ec.ListenClientUrls = []url.URL{{Scheme: "unix", Path: abs}}
		ec.AdvertiseClientUrls = ec.ListenClientUrls
		m.private = true
	}
	if len(ec.AdvertiseClientUrls) == 0 {
		ec.AdvertiseClientUrls = cfg.ListenClientURLs
	}
	ec.ListenPeerUrls = cfg.ListenPeerURLs
	ec.AdvertisePeerUrls = cfg.InitialAdvertisePeerURLs
	if len(ec.AdvertisePeerUrls) == 0 {
		ec.AdvertisePeerUrls = cfg.ListenPeerURLs
	}
	ec.InitialCluster = cfg.InitialCluster
	if ec.InitialCluster == "" {
		ec.InitialCluster = ec.InitialClusterFromName(cfg.Name)
	}
	ec.ClusterState = cfg.InitialClusterState
	ec.InitialClusterToken = cfg.InitialClusterToken
	ec.QuotaBackendBytes = cfg.QuotaBytes
	// etcd's raft timing (100/1000 ms), unless the settings say otherwise
	ownTiming := (cfg.HeartbeatMs != 0 && cfg.HeartbeatMs != ec.TickMs) || (cfg.ElectionMs != 0 && cfg.ElectionMs != ec.ElectionMs)
	if ownTiming && cfg.HeartbeatMs != 0 {
		ec.TickMs = cfg.HeartbeatMs
	}
	if ownTiming && cfg.ElectionMs != 0 {
		ec.ElectionMs = cfg.ElectionMs
	}
	ec.AutoCompactionMode = "periodic"
	ec.AutoCompactionRetention = cfg.AutoCompactionRetention.String()
	// A restart decodes every log segment kept (see init): 2 are plenty,
	// as segments with entries after the last snapshot are never removed.
	ec.MaxWalFiles = 2
	// etcd serves pprof on its client port at log level "debug": its own level never
	// becomes "debug"; ETCD_LOG_LEVEL filters the logger handed over below instead.
	ec.LogLevel = "info"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zl)
	_, err = os.Stat(filepath.Join(m.dir, "member"))
	fresh := os.IsNotExist(err)
	m.fresh = fresh
	if fresh && cfg.Join != "" {
		// A restarted member is in the cluster already; a fresh one asks to be added.
		if ec.InitialCluster, err = join(ctx, cfg, strings.Split(URLs(ec.AdvertisePeerUrls).String(), ","), zl); err != nil {
			m.close()
			return nil, err
		}
		ec.ClusterState = embed.ClusterStateFlagExisting
	}
	if (fresh && cfg.Join == "" && !strings.Contains(ec.InitialCluster, ",")) || (!fresh && alone(m.dir)) {
		// A lone member elects itself after a random 1 to 11 ticks: short
		// ticks make it ready in tens of milliseconds instead of up to a second.
		// Members of several keep etcd's timing, and any member the timing set.
		if !ownTiming {
			ec.TickMs, ec.ElectionMs = 20, 200
		}
		// Restarted, it refuses requests (and warns for each) while more than
		// 5,000 replayed entries wait to be applied: snapshot often enough
		// that fewer are ever replayed.
		ec.SnapshotCount = 2000
	}

	defer lazyGC()()
	e, err := embed.StartEtcd(ec)
	if err != nil {
		m.close()
		return nil, fmt.Errorf("starting etcd member: %w", err)
	}
	m.etcd = e
	return m, nil
}

// ready waits for the member to join its cluster's quorum and serve clients;
// when it cannot, it calls before, then stops the member.
func (m *member) ready(ctx context.Context, timeout time.Duration, before func()) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-m.etcd.Server.ReadyNotify():
		return nil
	case err := <-m.etcd.Err():
		before()
		m.close()
		return fmt.Errorf("etcd member failed: %w", err)
	case <-timer.C:
		before()
		m.abandon()
		return fmt.Errorf("etcd member not ready within STARTUP_TIMEOUT (%s): are the other members of ETCD_INITIAL_CLUSTER running?", timeout)
	case <-ctx.Done():
		before()
		m.abandon()
		return ctx.Err()
	}
}

// alone tells whether a restarted member is the only member of its cluster,
// from the membership etcd keeps in its backend (read before etcd opens it).
func alone(dir string) bool {
	db, err := bolt.Open(filepath.Join(dir, "member", "snap", "db"), 0o600, &bolt.Options{ReadOnly: true, Timeout: 100 * time.Millisecond})
	if err != nil {
		return false
	}
	defer db.Close()
	n := 0
	db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte("members")); b != nil {
			c := b.Cursor()
			for k, _ := c.First(); k != nil && n < 2; k, _ = c.Next() {
				n++
			}
		}
		return nil
	})
	return n == 1
}

// client talks to the member in-process, without a network hop.
func (m *member) client() *clientv3.Client { return v3client.New(m.etcd.Server) }

// watchClient is a client for watches. The in-process client deadlocks when
// watches are created and cancelled while events flow (its adapter's channels
// are unbuffered where gRPC has flow-control windows), so watches go over the
// member's own client URL: its first one, or its private socket.
func (m *member) watchClient(zl *zap.Logger) (*clientv3.Client, error) {
	urls := m.etcd.Config().AdvertiseClientUrls
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{urls[0].String()}, DialTimeout: 5 * time.Second, Logger: zl})
	if err != nil {
		return nil, fmt.Errorf("etcd watch client: %w", err)
	}
	return cli, nil
}

func (m *member) close() {
	if m.etcd != nil {
		m.quiet.Store(true)
		m.etcd.Close()
	}
	if m.lock != nil {
		m.lock.Close()
	}
	m.removeTemp()
}

// abandon stops a member that never became ready: embed's Close would wait
// forever for client servers that only start once the member is ready.
func (m *member) abandon() {
	m.quiet.Store(true)
	m.etcd.Server.HardStop()
	for _, l := range m.etcd.Clients {
		l.Close()
	}
	for _, p := range m.etcd.Peers {
		p.Listener.Close()
	}
	m.etcd = nil
	m.close()
}

func (m *member) removeTemp() {
	if m.temp {
		os.RemoveAll(m.dir)
	}
}
