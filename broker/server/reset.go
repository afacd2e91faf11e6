package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/store"
)

// ErrNoAccount: ResetAccount found no account of that name.
var ErrNoAccount = errors.New("no such account")

// ResetAccount gives the account username of the broker whose data
// directory is dataDir a new random password, which it returns, turns its
// two-factor authentication off and ends its logins, as an admin's reset
// in the console does. It is the way back in for an admin who forgot the
// password or lost the authenticator when no other admin can reset the
// account. The broker must be stopped: a running one would keep the
// account's live connections.
func ResetAccount(ctx context.Context, dataDir, username string) (string, error) {
	db := filepath.Join(dataDir, "tether.db")
	if _, err := os.Stat(db); err != nil {
		return "", fmt.Errorf("no broker database in %s: %w", dataDir, err)
	}
	lock, err := lockDataDir(dataDir)
	if err != nil {
		return "", fmt.Errorf("stop the broker first: %w", err)
	}
	defer lock.Close()
	st, err := store.OpenSQLite(ctx, db)
	if err != nil {
		return "", err
	}
	defer st.Close()
	if err := sealSecrets(ctx, st, dataDir, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		return "", err
	}
	authn, err := auth.New(auth.Config{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return "", err
	}
	u, err := st.UserByName(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("%w: %q", ErrNoAccount, username)
	}
	if err != nil {
		return "", err
	}
	return authn.ResetUser(ctx, u)
}
