package auth

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/tether-support/tether/broker/store"
)

// Recovery codes stand in for a two-factor code when the authenticator is
// lost: each works once, at sign-in or wherever the console asks for a
// code. An account gets RecoveryCodeCount of them when two-factor
// authentication turns on, and a new set on request; each has 10
// characters from an alphabet without look-alikes (about 50 bits), is
// shown once as "xxxxx-xxxxx", and is stored hashed.
const (
	RecoveryCodeCount  = 10
	recoveryCodeLength = 10
	recoveryAlphabet   = "abcdefghjkmnpqrstuvwxyz23456789" // no 0, 1, i, l or o
)

// newRecoveryCodes returns a new set of codes to show and their hashes for
// the account user.
func newRecoveryCodes(user int64) (codes, hashes []string) {
	for range RecoveryCodeCount {
		var b strings.Builder
		for b.Len() < recoveryCodeLength {
			// 256 is not a multiple of the alphabet's size: bytes past the
			// last whole multiple are drawn again, so that every character
			// is as likely.
			c := randomBytes(1)[0]
			if int(c) >= 256/len(recoveryAlphabet)*len(recoveryAlphabet) {
				continue
			}
			b.WriteByte(recoveryAlphabet[int(c)%len(recoveryAlphabet)])
		}
		code := b.String()
		codes = append(codes, code[:5]+"-"+code[5:])
		hashes = append(hashes, recoveryCodeHash(user, code))
	}
	return codes, hashes
}

// recoveryCode returns code as it is hashed (lower case, without spaces
// and dashes) and whether it has the form of a recovery code: a TOTP code
// has six digits.
func recoveryCode(code string) (string, bool) {
	c := strings.ToLower(strings.NewReplacer(" ", "", "-", "").Replace(code))
	if len(c) != recoveryCodeLength {
		return "", false
	}
	for _, r := range c {
		if !strings.ContainsRune(recoveryAlphabet, r) {
			return "", false
		}
	}
	return c, true
}

// recoveryCodeHash is how the code of the account user is stored: with
// the account's ID, so that a code hashes differently in each account.
func recoveryCodeHash(user int64, code string) string {
	return HashToken(strconv.FormatInt(user, 10) + ":" + code)
}

// useCode checks code, a current TOTP code of u or one of its recovery
// codes, and uses it up: no code works twice. It reports whether the code
// was right, and whether it was a recovery code.
func (a *Authenticator) useCode(ctx context.Context, u *store.User, code string, now time.Time) (ok, recovery bool, err error) {
	if c, isRecovery := recoveryCode(code); isRecovery {
		ok, err := a.cfg.Store.UseRecoveryCode(ctx, u.ID, recoveryCodeHash(u.ID, c))
		return ok, true, err
	}
	step, ok := checkTOTP(u.TOTPSecret, code, now)
	if !ok {
		return false, false, nil
	}
	ok, err = a.cfg.Store.UseTOTPStep(ctx, u.ID, step)
	return ok, false, err
}

// checkOwnerCode checks and uses up the code u's owner gave from source
// to do what only they may (doing, for the log). A wrong one counts
// towards the lockout as at login; a right one forgets the wrong codes
// counted against the account.
func (a *Authenticator) checkOwnerCode(ctx context.Context, u *store.User, source, code, doing string) error {
	now := a.cfg.Now()
	ok, _, err := a.useCode(ctx, u, code, now)
	if err != nil {
		return err
	}
	if !ok {
		a.recordFailure(failureKey(u.Username, source), now)
		a.recordFailureAfter(codeFailureKey(u.Username), now, maxCodeFailures)
		a.cfg.Logger.WarnContext(ctx, "wrong two-factor code to "+doing, "user", u.Username, "source", source)
		return ErrBadTOTP
	}
	a.mu.Lock()
	delete(a.failures, codeFailureKey(u.Username))
	a.mu.Unlock()
	return nil
}

// NewRecoveryCodes replaces the recovery codes of u, given its password and
// a code (from the authenticator, or a recovery code) sent from source,
// and returns the new ones: the old ones stop working.
func (a *Authenticator) NewRecoveryCodes(ctx context.Context, u *store.User, source, password, code string) ([]string, error) {
	if !u.TOTPEnabled {
		return nil, ErrTOTPOff
	}
	if err := a.lockedOut(codeFailureKey(u.Username), a.cfg.Now()); err != nil {
		return nil, err
	}
	if err := a.checkCurrentPassword(ctx, u, source, password, "make new recovery codes"); err != nil {
		return nil, err
	}
	if err := a.checkOwnerCode(ctx, u, source, code, "make new recovery codes"); err != nil {
		return nil, err
	}
	codes, hashes := newRecoveryCodes(u.ID)
	if err := a.cfg.Store.SetRecoveryCodes(ctx, u.ID, hashes); err != nil {
		return nil, err
	}
	a.cfg.Logger.InfoContext(ctx, "new recovery codes", "user", u.Username)
	return codes, nil
}

// RecoveryCodesLeft counts the recovery codes u has not used.
func (a *Authenticator) RecoveryCodesLeft(ctx context.Context, u *store.User) (int, error) {
	return a.cfg.Store.RecoveryCodesLeft(ctx, u.ID)
}
