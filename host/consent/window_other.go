//go:build !(linux || freebsd || openbsd || netbsd)

package consent

import (
	"context"
	"log/slog"
)

// keepInView does nothing where zenity's windows are not X windows.
func (d *Dialog) keepInView(context.Context, int, *slog.Logger) {}
