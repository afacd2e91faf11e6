package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/tether-support/tether/broker/record"
	"github.com/tether-support/tether/broker/store"
)

// SecretsKeyFile, in the data directory, holds the key that seals the
// accounts' two-factor secrets in the database (see store.SealSecrets).
// Back it up with the database: without it, every account with two-factor
// authentication needs a recovery code or a reset to sign in.
const SecretsKeyFile = "secrets.key"

// sealSecrets has st seal two-factor secrets with the data directory's
// key, made on first start, and says so if some do not open with it.
func sealSecrets(ctx context.Context, st *store.Store, dataDir string, log *slog.Logger) error {
	path := filepath.Join(dataDir, SecretsKeyFile)
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, store.SecretKeySize)
		if _, err := rand.Read(key); err != nil {
			return fmt.Errorf("make %s: %w", path, err)
		}
		if err := record.PlaceFile(dataDir, SecretsKeyFile, key, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	} else if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if len(key) != store.SecretKeySize {
		return fmt.Errorf("%s has %d bytes, not a key of %d: restore it from the backup of the data directory", path, len(key), store.SecretKeySize)
	}
	if err := st.SealSecrets(ctx, key); err != nil {
		return err
	}
	if n, err := st.UnreadableSecrets(ctx); err != nil {
		return err
	} else if n > 0 {
		log.Error("accounts' two-factor secrets do not open with the data directory's key: restore "+SecretsKeyFile+" from the backup it was made with; until then those accounts sign in with a recovery code, or an admin resets them", "accounts", n, "key", path)
	}
	return nil
}
