// Command etcdapi serves a REST API over an embedded etcd member or an external etcd cluster.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/joho/godotenv"
	"github.com/kelseyhightower/envconfig"
	"go.etcd.io/etcd/api/v3/version"
	"go.uber.org/zap"
	"golang.org/x/net/netutil"

	"etcdapi/demo"
	"etcdapi/server"
	"etcdapi/store"
)

// Version is stamped in by release builds (-ldflags "-X main.Version=...").
var Version = "dev"

// settings is every setting of the program, each package owning its own.
type settings struct {
	Server server.Config
	Store  store.Config
	Log    logConfig
}

type logConfig struct {
	Level  slog.Level `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	Format string     `envconfig:"LOG_FORMAT" default:"text" desc:"text, or json for machine-read logs"`
}

// usageError is a mistake in the command line or the settings: exit status 2.
type usageError struct{ error }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "etcdapi:", err)
		if errors.As(err, new(usageError)) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch {
	case cmd == "help" || (len(args) > 0 && (args[0] == "-help" || args[0] == "--help")):
		return usage(stdout)
	case cmd == "version" || (len(args) > 0 && (args[0] == "-version" || args[0] == "--version")):
		fmt.Fprintf(stdout, "etcdapi %s (etcd %s, %s)\n", Version, version.Version, goVersion())
		return nil
	case cmd != "" && cmd != "restore" && cmd != "demo":
		return usageError{fmt.Errorf("unknown command %q (try etcdapi -h)", cmd)}
	}
	fs, got := settingsFlags("etcdapi")
	members := 0
	if cmd == "demo" {
		fs.IntVar(&members, "membros", 3, "")
	}
	rest, err := parseFlags(fs, got, args)
	if errors.Is(err, flag.ErrHelp) {
		return usage(stdout)
	}
	if err != nil {
		return err
	}
	switch {
	case cmd == "restore" && len(rest) != 1:
		return usageError{errors.New("usage: etcdapi restore [flags] SNAPSHOT_FILE (into --data-dir)")}
	case cmd != "restore" && len(rest) > 0:
		return usageError{fmt.Errorf("unexpected argument %q (try etcdapi -h)", rest[0])}
	case cmd == "demo" && (members < 1 || members > 7 || members%2 == 0):
		return usageError{fmt.Errorf("invalid value %d for --membros: want an odd number from 1 to 7", members)}
	}
	cfg, err := loadSettings(got)
	if err != nil {
		return err
	}
	if cmd == "demo" && (cfg.Server.TLSCertFile != "" || len(cfg.Store.Endpoints) > 0) {
		// Its members are local and serve plain HTTP: say so rather than ignore the setting.
		return usageError{errors.New("demo runs its own members over plain HTTP on loopback: TLS_CERT_FILE and ETCD_ENDPOINTS do not apply")}
	}
	logw := server.NewLogWriter(stderr)
	defer logw.Close()
	log := newLogger(cfg.Log, logw)
	warnIfExposed(log, cfg)
	switch cmd {
	case "restore":
		if err := store.Restore(rest[0], cfg.Store, zap.NewNop()); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		fmt.Fprintf(stdout, "etcdapi: restored %s into %s\n", rest[0], cfg.Store.DataDir)
		return nil
	case "demo":
		return demo.Run(ctx, demo.Config{Members: members, Addr: cfg.Server.Addr, Token: cfg.Server.Token, StartupTimeout: cfg.Store.StartupTimeout, MaxBodyBytes: cfg.Server.MaxBodyBytes,
			MaxConns: maxConns(cfg.Server.MaxConns), CORSOrigins: cfg.Server.CORSOrigins, AllowedHosts: cfg.Server.AllowedHosts}, stdout, stderr)
	}

	// Listen before starting etcd: a port in use fails at once.
	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR %s: %w", cfg.Server.Addr, err)
	}
	defer ln.Close()
	// Connections past the limit wait in the kernel's queue: the member
	// always has file descriptors left for its log and database.
	ln = netutil.LimitListener(ln, maxConns(cfg.Server.MaxConns))

	st, err := store.Open(ctx, cfg.Store, log)
	if err != nil {
		return err
	}
	defer st.Close()

	// Every request's context derives from base: shutting down cancels it with
	// server.ErrShuttingDown, so streams end and waiters answer 503 at once
	// instead of holding Shutdown until its limit.
	base, cancelBase := context.WithCancelCause(context.Background())
	defer cancelBase(nil)
	srv := server.HTTPServer(server.New(st, cfg.Server, log))
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	srv.BaseContext = func(net.Listener) context.Context { return base }
	srv.RegisterOnShutdown(func() { cancelBase(server.ErrShuttingDown) })
	printBanner(stdout, cfg, st, ln.Addr().String())

	served := make(chan error, 1)
	go func() {
		if cfg.Server.TLSCertFile != "" {
			served <- srv.ServeTLS(ln, cfg.Server.TLSCertFile, cfg.Server.TLSKeyFile)
		} else {
			served <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-served:
		return fmt.Errorf("serving HTTP: %w", err)
	case err := <-st.Err():
		return fmt.Errorf("etcd member stopped: %w", err)
	case <-ctx.Done():
	}
	// In-flight requests finish; then the member stops (deferred above).
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("requests cut short by shutdown", "err", err)
	}
	fmt.Fprintln(stdout, "etcdapi: shut down")
	return nil
}

// loadSettings reads .env (the real environment wins), then the environment,
// where parseFlags put the flags given (got).
func loadSettings(got map[string]string) (settings, error) {
	var cfg settings
	if err := godotenv.Load(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return cfg, usageError{fmt.Errorf(".env: %w", err)}
	}
	for _, part := range []any{&cfg.Log, &cfg.Server, &cfg.Store} {
		if err := envconfig.Process("", part); err != nil {
			var pe *envconfig.ParseError
			if errors.As(err, &pe) {
				return cfg, usageError{fmt.Errorf("invalid %s=%q: %v", settingName(got, pe.KeyName), pe.Value, pe.Err)}
			}
			return cfg, usageError{err}
		}
	}
	if f := cfg.Log.Format; f != "text" && f != "json" {
		return cfg, usageError{fmt.Errorf("invalid %s=%q: want text or json", settingName(got, "LOG_FORMAT"), f)}
	}
	if s := cfg.Store.InitialClusterState; s != "new" && s != "existing" {
		return cfg, usageError{fmt.Errorf("invalid %s=%q: want new or existing", settingName(got, "ETCD_INITIAL_CLUSTER_STATE"), s)}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"MAX_STREAMS", cfg.Server.MaxStreams}, {"MAX_WAITERS", cfg.Server.MaxWaiters}} {
		if n.v < 1 {
			return cfg, usageError{fmt.Errorf("invalid %s=%d: want at least 1", settingName(got, n.name), n.v)}
		}
	}
	if cfg.Server.MaxConns < 0 {
		return cfg, usageError{fmt.Errorf("invalid %s=%d: want 0 (automatic) or more", settingName(got, "MAX_CONNS"), cfg.Server.MaxConns)}
	}
	if (cfg.Server.TLSCertFile == "") != (cfg.Server.TLSKeyFile == "") {
		return cfg, usageError{errors.New("TLS_CERT_FILE and TLS_KEY_FILE (--tls-cert-file, --tls-key-file) go together")}
	}
	return cfg, nil
}

func newLogger(cfg logConfig, w io.Writer) *slog.Logger {
	return slog.New(server.NewLogHandler(w, cfg.Format == "json", cfg.Level))
}

// usage prints every setting once: its flag, its variable, its default and meaning.
func usage(w io.Writer) error {
	fmt.Fprintln(w, "etcdapi: a REST API over etcd, with an embedded etcd member by default.")
	fmt.Fprintln(w, `
Usage:
  etcdapi [flags]                      serve the API (and the dashboard at /ui/)
  etcdapi demo [--membros N] [flags]   a whole cluster of N members (odd, 1..7, default 3) on loopback
  etcdapi restore [flags] SNAPSHOT     build --data-dir from a snapshot (GET /cluster/snapshot)
  etcdapi version

Settings: a flag wins over the environment variable, which wins over a .env file in
the working directory.`)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  flag\tvariable\tdefault\tmeaning")
	for _, s := range allSettings() {
		fmt.Fprintf(tw, "  --%s\t%s\t%s\t%s\n", s.Flag, s.Var, s.Default, s.Desc)
	}
	return tw.Flush()
}

func printBanner(w io.Writer, cfg settings, st *store.Store, addr string) {
	scheme := "http"
	if cfg.Server.TLSCertFile != "" {
		scheme = "https"
	}
	api := scheme + "://" + addr
	mode := "external etcd cluster"
	if st.Embedded() {
		mode = "embedded etcd member " + cfg.Store.Name
		if strings.Contains(cfg.Store.InitialCluster, ",") || cfg.Store.Join != "" {
			mode = "embedded member " + cfg.Store.Name + " of an etcd cluster"
		}
	}
	fmt.Fprintf(w, "etcdapi %s: %s\n", Version, mode)
	if dir := st.DataDir(); dir != "" {
		fmt.Fprintf(w, "  data:  %s\n", dir)
	}
	etcd := strings.Join(st.ClientURLs(), ",")
	if etcd == "" {
		etcd = "off (ETCD_LISTEN_CLIENT_URLS=off)"
	}
	fmt.Fprintf(w, "  API:   %s\n  UI:    %s/ui/\n  etcd:  %s\n", api, api, etcd)
}

func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return "go"
}

// maxConns is MAX_CONNS, or when 0 half the open-file limit, at most 4096.
func maxConns(setting int) int {
	if setting > 0 {
		return setting
	}
	n := openFileLimit() / 2
	if n == 0 || n > 4096 {
		n = 4096
	}
	return int(n)
}

// warnIfExposed says so when something listens beyond loopback without protection.
func warnIfExposed(log *slog.Logger, cfg settings) {
	if !server.LoopbackAddr(cfg.Server.Addr) && cfg.Server.Token == "" && cfg.Server.TLSCertFile == "" {
		log.Warn("the API listens beyond loopback with neither API_TOKEN nor TLS: anyone on the network can change its data", "HTTP_ADDR", cfg.Server.Addr)
	}
	if len(cfg.Store.Endpoints) > 0 {
		return
	}
	for _, u := range append(cfg.Store.ListenClientURLs, cfg.Store.ListenPeerURLs...) {
		if !server.LoopbackAddr(u.Host) && u.Scheme == "http" {
			log.Warn("the embedded etcd member listens beyond loopback without TLS or auth: anyone on the network can read and change its data", "url", u.String())
		}
	}
}
