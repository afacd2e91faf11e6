package auth

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// TOTP (RFC 6238) with the parameters every authenticator app supports:
// HMAC-SHA1, 6 digits, 30-second steps. One step either side is accepted
// for clock drift.
const (
	totpDigits = 6
	totpPeriod = 30
	totpSkew   = 1
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewTOTPSecret returns a random 160-bit secret, base32 encoded.
func NewTOTPSecret() string {
	return b32.EncodeToString(randomBytes(20))
}

// hotp is RFC 4226: HMAC-SHA1 of the counter, dynamically truncated.
func hotp(key []byte, counter uint64, digits int) string {
	mac := hmac.New(sha1.New, key)
	binary.Write(mac, binary.BigEndian, counter)
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, v%mod)
}

// totpStep is the RFC 6238 time step of t.
func totpStep(t time.Time) int64 { return t.Unix() / totpPeriod }

// TOTPCode returns the code of secret at t.
func TOTPCode(secret string, t time.Time) (string, error) {
	key, err := b32.DecodeString(strings.ToUpper(secret))
	if err != nil {
		return "", fmt.Errorf("TOTP secret is not base32: %w", err)
	}
	return hotp(key, uint64(totpStep(t)), totpDigits), nil
}

// checkTOTP returns the step whose code matches, trying drift either side.
func checkTOTP(secret, code string, now time.Time) (int64, bool) {
	code = strings.ReplaceAll(code, " ", "")
	if len(code) != totpDigits {
		return 0, false
	}
	key, err := b32.DecodeString(strings.ToUpper(secret))
	if err != nil || len(key) == 0 {
		// No secret (one that did not open reads as none) has no code:
		// an empty key's codes are anyone's to compute.
		return 0, false
	}
	step := totpStep(now)
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		want := hotp(key, uint64(step+d), totpDigits)
		if hmac.Equal([]byte(want), []byte(code)) {
			return step + d, true
		}
	}
	return 0, false
}

// TOTPURI is the otpauth:// URI authenticator apps read from a QR code.
func TOTPURI(issuer, account, secret string) string {
	v := url.Values{}
	v.Set("secret", secret)
	v.Set("issuer", issuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", fmt.Sprint(totpDigits))
	v.Set("period", fmt.Sprint(totpPeriod))
	return "otpauth://totp/" + url.PathEscape(issuer+":"+account) + "?" + v.Encode()
}
