package store

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapToSlog is a zap core that writes etcd's logs into the program's slog stream,
// so there is one log, at one format.
type zapToSlog struct {
	h     slog.Handler
	level zapcore.Level
	quiet *atomic.Bool // set while the member stops: etcd logs errors with stacks on a clean stop
	dying func()       // called after a fatal line is written, before etcd ends the process
}

func newEtcdLogger(h slog.Handler, level string, quiet *atomic.Bool, dying func()) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	return zap.New(&zapToSlog{h: h, level: lvl, quiet: quiet, dying: dying}).With(zap.String("component", "etcd")), nil
}

func (c *zapToSlog) Enabled(l zapcore.Level) bool {
	return l >= c.level && (l >= zapcore.PanicLevel || !c.quiet.Load())
}

func (c *zapToSlog) With(fields []zapcore.Field) zapcore.Core {
	return &zapToSlog{h: c.h.WithAttrs(attrs(fields)), level: c.level, quiet: c.quiet, dying: c.dying}
}

// noise are etcd's messages that say nothing to an etcdapi user: advice for
// etcd's own command line, and warnings every fresh member logs once.
var noise = []string{
	"Running http and grpc server on single port",
	"it isn't recommended to use default name",
	"simple token is not cryptographically signed",
	"Failed to detect schema version",
	"failed to update storage version",
}

func (c *zapToSlog) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) && !slices.ContainsFunc(noise, func(n string) bool { return strings.HasPrefix(e.Message, n) }) {
		return ce.AddCore(e, c)
	}
	return ce
}

// retrying is etcd's warning, repeated in a tight loop for up to a second
// after a restart over a large log, that it cannot publish the member while it
// is still applying that log: the member becomes ready once it has.
func retrying(e zapcore.Entry, fields []zapcore.Field) bool {
	if e.Message != "failed to publish local member to cluster through raft" {
		return false
	}
	return slices.ContainsFunc(fields, func(f zapcore.Field) bool {
		err, ok := f.Interface.(error)
		return f.Key == "error" && ok && strings.Contains(err.Error(), "too many requests")
	})
}

func (c *zapToSlog) Write(e zapcore.Entry, fields []zapcore.Field) error {
	if retrying(e, fields) {
		return nil
	}
	lvl := slog.LevelInfo
	switch {
	case e.Level >= zapcore.ErrorLevel:
		lvl = slog.LevelError
	case e.Level == zapcore.WarnLevel:
		lvl = slog.LevelWarn
	case e.Level == zapcore.DebugLevel:
		lvl = slog.LevelDebug
	}
	r := slog.NewRecord(e.Time, lvl, e.Message, 0)
	r.AddAttrs(attrs(fields)...)
	err := c.h.Handle(context.Background(), r)
	if e.Level == zapcore.FatalLevel {
		c.dying() // zap exits once this returns (a panic may be recovered: the data stays)
	}
	return err
}

func (c *zapToSlog) Sync() error { return nil }

func attrs(fields []zapcore.Field) []slog.Attr {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	out := make([]slog.Attr, 0, len(enc.Fields))
	for k, v := range enc.Fields {
		out = append(out, slog.Any(k, v))
	}
	return out
}
