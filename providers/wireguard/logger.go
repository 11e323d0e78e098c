package wireguard

import (
	"context"
	"fmt"
	"log/slog"

	"golang.zx2c4.com/wireguard/device"
)

// deviceLogger bridges wireguard-go's logger to log: its errors at error
// level, and its verbose messages (per handshake and keepalive, sometimes
// per packet) at debug level, and only when log has debug enabled, so that
// they cost nothing otherwise. wireguard-go logs public keys abbreviated
// and never private or preshared keys.
func deviceLogger(log *slog.Logger) *device.Logger {
	log = log.With("component", "wireguard-go")
	l := &device.Logger{
		Verbosef: device.DiscardLogf,
		Errorf: func(format string, args ...any) {
			log.Error(fmt.Sprintf(format, args...))
		},
	}
	if log.Enabled(context.Background(), slog.LevelDebug) {
		l.Verbosef = func(format string, args ...any) {
			log.Debug(fmt.Sprintf(format, args...))
		}
	}
	return l
}
