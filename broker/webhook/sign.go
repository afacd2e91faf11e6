package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Request headers of every delivery.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>",
	// with a second v1 while an old secret still signs (see Sign).
	SignatureHeader = "Tether-Signature"
	// DeliveryHeader names the delivery, as listed by the admin API.
	DeliveryHeader = "Tether-Delivery"
	// EventHeader repeats the event type of the body.
	EventHeader = "Tether-Event"
	// UserAgent identifies the broker to receivers.
	UserAgent = "Tether-Webhooks/1"
)

// Errors from Verify.
var (
	ErrBadSignatureHeader = errors.New("malformed " + SignatureHeader + " header")
	ErrSignatureMismatch  = errors.New("signature does not match")
	ErrSignatureExpired   = errors.New("signature timestamp outside the tolerance")
)

// Sign returns the SignatureHeader value for body sent at unix time t:
// HMAC-SHA256 keyed with the endpoint's secret (its text, as shown to the
// admin) over "<t>.<body>", in hex. The timestamp inside the signed text
// lets receivers refuse replays of old deliveries. Each of old, the
// secrets a new one replaced that still sign, adds a v1 signature after
// the first: a receiver that has not saved the new secret yet still finds
// one that verifies.
func Sign(secret string, t int64, body []byte, old ...string) string {
	out := "t=" + strconv.FormatInt(t, 10) + ",v1=" + hex.EncodeToString(mac(secret, t, body))
	for _, s := range old {
		out += ",v1=" + hex.EncodeToString(mac(s, t, body))
	}
	return out
}

func mac(secret string, t int64, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(t, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a SignatureHeader value against body, as a receiver
// written in Go would: some v1 signature must match, and t must be within
// tolerance of now. Unknown schemes in the header are ignored.
func Verify(header, secret string, body []byte, now time.Time, tolerance time.Duration) error {
	var t int64
	var sigs [][]byte
	haveT := false
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrBadSignatureHeader
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("%w: timestamp %q", ErrBadSignatureHeader, v)
			}
			t, haveT = n, true
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil {
				return fmt.Errorf("%w: signature is not hex", ErrBadSignatureHeader)
			}
			sigs = append(sigs, sig)
		}
	}
	if !haveT || len(sigs) == 0 {
		return ErrBadSignatureHeader
	}
	if d := now.Sub(time.Unix(t, 0)); d > tolerance || d < -tolerance {
		return ErrSignatureExpired
	}
	want := mac(secret, t, body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return ErrSignatureMismatch
}
