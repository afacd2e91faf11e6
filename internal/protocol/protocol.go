// Package protocol defines every message that crosses the wire between the
// broker, hosts and viewers: the signaling envelope carried over WebSocket,
// its payloads, the protocol version and the size limits each decoder
// enforces before it allocates.
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Version is the signaling protocol version stated in every hello. A peer
// speaking another major version is refused with ErrVersion.
const Version = 1

// Limits on what a decoder accepts. They are checked before anything is
// allocated for the message body.
const (
	// MaxMessageSize bounds one signaling message (an SDP with all
	// candidates is a few KiB; 64 KiB leaves room without inviting abuse).
	MaxMessageSize = 64 << 10
	// MaxSDPSize bounds the SDP inside an offer or answer.
	MaxSDPSize = 32 << 10
	// MaxIDSize bounds identifiers and short strings (ids, codes, names).
	MaxIDSize = 128
	// MaxTextSize bounds human-readable strings such as reasons and messages.
	MaxTextSize = 1024
)

// Message types. Unknown types are skipped by receivers so that newer peers
// can add messages without breaking older ones.
const (
	TypeHello   = "hello"   // first message of every peer: version and who it is
	TypeWelcome = "welcome" // broker's answer to a hello
	TypeOffer   = "offer"   // SDP offer (complete, candidates included)
	TypeAnswer  = "answer"  // SDP answer (complete, candidates included)
	TypeState   = "state"   // session state changed (host joined or left)
	TypeEnd     = "end"     // a participant asks to end the session
	TypeEnded   = "ended"   // the session is over; the connection closes next
	TypeError   = "error"   // a request failed; see ErrorPayload.Code
	TypeCode    = "code"    // broker to a host that asked for a code: the code to read out
	// A page cannot send WebSocket pings: the console asks with a message,
	// and the broker answers at once, to tell a broker that stopped
	// answering (or a network that drops everything) from a quiet one.
	TypePing = "ping"
	TypePong = "pong"
)

// Roles a peer states in its hello.
const (
	RoleHost   = "host"
	RoleViewer = "viewer"
)

// Error codes carried in ErrorPayload.Code. They are stable: clients branch
// on them and show Message to people.
const (
	CodeBadMessage     = "bad_message"
	CodeTooLarge       = "message_too_large"
	CodeVersion        = "unsupported_version"
	CodeInvalidCode    = "invalid_code"
	CodeExpiredCode    = "expired_code"
	CodeUsedCode       = "code_used"
	CodeRateLimited    = "rate_limited"
	CodeUnauthorized   = "unauthorized"
	CodeForbidden      = "forbidden"
	CodeNotFound       = "not_found"
	CodeSessionEnded   = "session_ended"
	CodeHostPresent    = "host_already_connected"
	CodeNegotiation    = "negotiation_failed"
	CodeInternal       = "internal_error"
	CodeUnexpectedType = "unexpected_message"
)

// Errors returned by Decode. Each one fails the message, not the connection:
// the receiver answers with an error message and keeps reading.
var (
	ErrTooLarge   = errors.New("message too large")
	ErrMalformed  = errors.New("malformed message")
	ErrVersion    = errors.New("unsupported protocol version")
	ErrFieldLimit = errors.New("field exceeds its size limit")
)

// Envelope is the one shape of every signaling message.
type Envelope struct {
	V       int             `json:"v"`
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Session string          `json:"session,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Hello is the first message a host or viewer sends.
type Hello struct {
	Version int    `json:"version"`
	Role    string `json:"role"`
	// Code is the one-time support code (hosts only).
	Code string `json:"code,omitempty"`
	// Session is the session to join (viewers only).
	Session string `json:"session,omitempty"`
	// Host describes the host's machine (hosts only).
	Host *HostInfo `json:"host,omitempty"`
	// NewCode asks the broker for a code (hosts only, instead of Code): the
	// user reads it out to a technician, who claims it for a ticket.
	NewCode bool `json:"new_code,omitempty"`
}

// IssuedCode is the code a broker issued to a host that asked for one.
type IssuedCode struct {
	Code      string    `json:"code"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (c *IssuedCode) validate() error {
	if c.Code == "" {
		return fmt.Errorf("%w: empty code", ErrMalformed)
	}
	return limit("code", c.Code, MaxIDSize)
}

// HostInfo describes the desktop a host shares.
type HostInfo struct {
	Hostname string `json:"hostname"`
	OS       string `json:"os"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
	Capture  string `json:"capture,omitempty"` // which capture path runs
	// MaxFile is the largest file, in bytes, the user's computer takes or
	// gives in one transfer: a technician's tools refuse a larger one
	// before they read it through for its SHA-256. Zero: not said.
	MaxFile int64 `json:"max_file,omitempty"`
	// FilesRoot and FilesInbox are the folder technicians browse and the
	// one files sent to the user land in, as the user knows them
	// ("~", "~/Downloads/Tether"): the console says where, whatever the
	// host was told. Empty: not said.
	FilesRoot  string `json:"files_root,omitempty"`
	FilesInbox string `json:"files_inbox,omitempty"`
}

// Welcome is the broker's answer to a valid hello.
type Welcome struct {
	Session string `json:"session"`
	State   string `json:"state"`
}

// SDP carries a complete offer or answer.
type SDP struct {
	SDP string `json:"sdp"`
}

// State tells viewers that the session changed.
type State struct {
	State string    `json:"state"`
	Host  *HostInfo `json:"host,omitempty"`
	// HostSilentSince is set while the broker hears nothing from the
	// host (its computer is frozen or its network dropped): when the
	// broker noticed. A state without it means the host answers.
	HostSilentSince time.Time `json:"host_silent_since,omitzero"`
}

// Ended says why a session, or this connection to it, is over.
type Ended struct {
	Reason string `json:"reason"`
	// Scope says which is over: ScopeSession (for everyone) or
	// ScopeConnection (only this connection, whose access was withdrawn:
	// the session may go on without it). Brokers before it left it out;
	// their close reason "session ended" marked the session's end.
	Scope string `json:"scope,omitempty"`
}

// What an Ended message says is over.
const (
	ScopeSession    = "session"
	ScopeConnection = "connection"
)

// End is a request to end the session.
type End struct {
	Reason string `json:"reason,omitempty"`
}

// Why a host asks to end the session (End's Reason), which the broker
// words for the technician.
const (
	EndByUser      = "the user ended the session"
	EndDisplayGone = "the display went away" // the user's desktop closed: logged out, X server stopped
)

// ErrorPayload reports a failed request.
type ErrorPayload struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Decode parses one signaling message, enforcing MaxMessageSize and the
// protocol version. With ErrVersion, the envelope holds the peer's version
// V and nothing else.
func Decode(data []byte) (Envelope, error) {
	var env Envelope
	if len(data) > MaxMessageSize {
		return env, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxMessageSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&env); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return Envelope{}, fmt.Errorf("%w: trailing data after the message", ErrMalformed)
	}
	if env.V != Version {
		// The version is kept: the receiver answers in it, so that the
		// peer can read why it was refused.
		return Envelope{V: env.V}, fmt.Errorf("%w: got %d, want %d", ErrVersion, env.V, Version)
	}
	if env.Type == "" {
		return Envelope{}, fmt.Errorf("%w: missing type", ErrMalformed)
	}
	if len(env.Type) > MaxIDSize || len(env.ID) > MaxIDSize || len(env.Session) > MaxIDSize {
		return Envelope{}, fmt.Errorf("%w: envelope field", ErrFieldLimit)
	}
	return env, nil
}

// Encode builds an envelope around payload and marshals it.
func Encode(typ, session string, payload any) ([]byte, error) {
	env := Envelope{V: Version, Type: typ, Session: session}
	if payload != nil {
		raw, err := json.Marshal(payload)
		if err != nil {
			return nil, fmt.Errorf("encode %s payload: %w", typ, err)
		}
		env.Payload = raw
	}
	data, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", typ, err)
	}
	if len(data) > MaxMessageSize {
		return nil, fmt.Errorf("encode %s: %w: %d bytes", typ, ErrTooLarge, len(data))
	}
	return data, nil
}

// EncodeError is Encode for an error message in the envelope of protocol
// version v rather than Version. An error payload is the same in every
// version: a peer of another version, refused for it, can still read why.
func EncodeError(v int, session string, e ErrorPayload) ([]byte, error) {
	raw, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", TypeError, err)
	}
	return json.Marshal(Envelope{V: v, Type: TypeError, Session: session, Payload: raw})
}

// validator is implemented by payloads that check their own limits.
type validator interface{ validate() error }

// DecodePayload unmarshals an envelope's payload into v and checks v's
// field limits.
func DecodePayload(env Envelope, v validator) error {
	if len(env.Payload) == 0 {
		return fmt.Errorf("%w: %s has no payload", ErrMalformed, env.Type)
	}
	if err := json.Unmarshal(env.Payload, v); err != nil {
		return fmt.Errorf("%w: %s payload: %v", ErrMalformed, env.Type, err)
	}
	if err := v.validate(); err != nil {
		return fmt.Errorf("%s: %w", env.Type, err)
	}
	return nil
}

func limit(name, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%w: %s is %d bytes, limit %d", ErrFieldLimit, name, len(s), max)
	}
	return nil
}

func (h *Hello) validate() error {
	if h.Version != Version {
		return fmt.Errorf("%w: got %d, want %d", ErrVersion, h.Version, Version)
	}
	switch h.Role {
	case RoleHost, RoleViewer:
	default:
		return fmt.Errorf("%w: unknown role %q", ErrMalformed, truncate(h.Role))
	}
	if err := errors.Join(limit("code", h.Code, MaxIDSize), limit("session", h.Session, MaxIDSize)); err != nil {
		return err
	}
	if h.NewCode && (h.Role != RoleHost || h.Code != "") {
		return fmt.Errorf("%w: only a host without a code may ask for one", ErrMalformed)
	}
	if h.Host != nil {
		return h.Host.validate()
	}
	return nil
}

func (h *HostInfo) validate() error {
	if h.Width < 0 || h.Height < 0 || h.Width > 16384 || h.Height > 16384 {
		return fmt.Errorf("%w: display size %dx%d", ErrMalformed, h.Width, h.Height)
	}
	if h.MaxFile < 0 {
		return fmt.Errorf("%w: file size limit %d", ErrMalformed, h.MaxFile)
	}
	return errors.Join(limit("hostname", h.Hostname, MaxIDSize), limit("os", h.OS, MaxIDSize), limit("capture", h.Capture, MaxIDSize),
		limit("files_root", h.FilesRoot, MaxTextSize), limit("files_inbox", h.FilesInbox, MaxTextSize))
}

func (w *Welcome) validate() error {
	return errors.Join(limit("session", w.Session, MaxIDSize), limit("state", w.State, MaxIDSize))
}

func (s *SDP) validate() error {
	if s.SDP == "" {
		return fmt.Errorf("%w: empty sdp", ErrMalformed)
	}
	return limit("sdp", s.SDP, MaxSDPSize)
}

func (s *State) validate() error {
	if err := limit("state", s.State, MaxIDSize); err != nil {
		return err
	}
	if s.Host != nil {
		return s.Host.validate()
	}
	return nil
}

func (e *Ended) validate() error {
	return errors.Join(limit("reason", e.Reason, MaxTextSize), limit("scope", e.Scope, MaxIDSize))
}
func (e *End) validate() error { return checkText("reason", e.Reason, MaxTextSize) }
func (e *ErrorPayload) validate() error {
	return errors.Join(limit("code", e.Code, MaxIDSize), limit("message", e.Message, MaxTextSize))
}

// truncate keeps untrusted strings short in error messages.
func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
