package registry

import (
	"context"
	"io"
	"log/slog"
	"sync"

	"github.com/sirupsen/logrus"
)

var logrusMu sync.Mutex

// quietDistributionLogs silences distribution's logrus output (it logs
// every request, and a 404 for a HEAD probe, which mirroring tools issue
// constantly, at error level). When the airlock logger is at debug level,
// the lines are forwarded to it at debug level instead of being dropped.
// logrus is process-wide, so this affects every registry in the process.
func quietDistributionLogs(logger *slog.Logger) {
	logrusMu.Lock()
	defer logrusMu.Unlock()
	std := logrus.StandardLogger()
	std.SetOutput(io.Discard)
	std.ReplaceHooks(logrus.LevelHooks{})
	if logger == nil || !logger.Enabled(context.Background(), slog.LevelDebug) {
		std.SetLevel(logrus.PanicLevel)
		return
	}
	std.SetLevel(logrus.InfoLevel)
	std.AddHook(slogHook{logger: logger.With("component", "distribution")})
}

type slogHook struct{ logger *slog.Logger }

func (slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h slogHook) Fire(e *logrus.Entry) error {
	attrs := make([]any, 0, 2*len(e.Data)+2)
	attrs = append(attrs, "distribution_level", e.Level.String())
	for k, v := range e.Data {
		switch k {
		case "go.version", "instance.id", "service", "version":
			continue // constant noise
		}
		attrs = append(attrs, k, v)
	}
	h.logger.Debug(e.Message, attrs...)
	return nil
}
