package protocol

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Permissions a technician asks for and the user grants, one by one.
const (
	PermView      = "view"      // see the screen
	PermControl   = "control"   // mouse and keyboard
	PermClipboard = "clipboard" // read and set the clipboard
	PermFiles     = "files"     // file transfer
	PermShell     = "shell"     // remote shell
)

// AllPermissions in the order they are shown to the user.
var AllPermissions = []string{PermView, PermControl, PermClipboard, PermFiles, PermShell}

// PermWords names permissions for people, as in "The user allowed view,
// control and file transfer".
func PermWords(perms ...string) string {
	words := make([]string, len(perms))
	for i, p := range perms {
		words[i] = p
		if p == PermFiles {
			words[i] = "file transfer"
		}
	}
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// Consent messages on the signaling connections.
const (
	TypeConsentRequest    = "consent.request"    // broker → host: someone asks to come in, or for more
	TypeConsentAnswer     = "consent.answer"     // host → broker: what the user granted
	TypeConsentState      = "consent.state"      // host → broker: the user changed grants or paused
	TypePermissions       = "permissions"        // broker → viewer: what this viewer may do now
	TypePermissionRequest = "permission.request" // viewer → broker: ask the user for more
	TypeViewerLeft        = "viewer.left"        // broker → host: a technician left the session
	TypeObservers         = "observers"          // broker → viewers: who watches the session read-only
)

// Observers lists the supervisors watching a live session read-only, so
// that everyone working in it knows they are observed.
type Observers struct {
	Observers []Person `json:"observers"`
}

// MaxObservers bounds the list.
const MaxObservers = 32

func (o *Observers) validate() error {
	if len(o.Observers) > MaxObservers {
		return fmt.Errorf("%d observers, limit %d", len(o.Observers), MaxObservers)
	}
	var errs []error
	for i := range o.Observers {
		errs = append(errs, o.Observers[i].validate())
	}
	return errors.Join(errs...)
}

// ReturnWithin is how long the host keeps what the user allowed a
// technician who left, should they come back (a reload of the console,
// the next viewer command): they are not asked again. It is the broker's
// default wait for them too.
const ReturnWithin = 2 * time.Minute

// ViewerLeft tells the host that a technician is gone, with their grants.
type ViewerLeft struct {
	Viewer string `json:"viewer"`
	// CutOff is set when the broker ended the connection because its
	// access was withdrawn (account disabled, key revoked): what the user
	// allowed it is not kept for a return. The broker sends it again for
	// a connection that left a moment before its access was withdrawn, so
	// that what is kept for it goes.
	CutOff bool `json:"cut_off,omitempty"`
}

func (v *ViewerLeft) validate() error { return limit("viewer", v.Viewer, MaxIDSize) }

// ErrPermission is wrapped by permission list errors.
var ErrPermission = errors.New("invalid permission")

// CheckPermissions accepts a list of known permissions without repeats.
func CheckPermissions(perms []string) error {
	if len(perms) > len(AllPermissions) {
		return fmt.Errorf("%w: %d permissions", ErrPermission, len(perms))
	}
	for i, p := range perms {
		if !slices.Contains(AllPermissions, p) {
			return fmt.Errorf("%w: %q", ErrPermission, truncate(p))
		}
		if slices.Contains(perms[:i], p) {
			return fmt.Errorf("%w: %q twice", ErrPermission, p)
		}
	}
	return nil
}

// Person says who a technician is, as shown to the user.
type Person struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
	Org  string `json:"org,omitempty"`
}

func (p *Person) validate() error {
	return errors.Join(limit("id", p.ID, MaxIDSize), limit("name", p.Name, MaxIDSize), limit("role", p.Role, MaxIDSize), limit("org", p.Org, MaxIDSize))
}

// ConsentRequest asks the user to let Viewer in with Permissions.
type ConsentRequest struct {
	ID          string   `json:"id"`
	Viewer      Person   `json:"viewer"`
	Ticket      string   `json:"ticket,omitempty"`
	Permissions []string `json:"permissions"`
	// More is true when the viewer is connected already and asks for more.
	More bool `json:"more,omitempty"`
	// Timeout is how long the user has to answer; no answer is no.
	TimeoutSeconds int `json:"timeout_seconds"`
}

func (r *ConsentRequest) validate() error {
	if len(r.Permissions) == 0 {
		return fmt.Errorf("%w: nothing requested", ErrPermission)
	}
	if r.TimeoutSeconds < 1 || r.TimeoutSeconds > 600 {
		return fmt.Errorf("%w: timeout %d s", ErrMalformed, r.TimeoutSeconds)
	}
	return errors.Join(limit("id", r.ID, MaxIDSize), r.Viewer.validate(), limit("ticket", r.Ticket, MaxIDSize), CheckPermissions(r.Permissions))
}

// ConsentAnswer is the user's answer to one request: the permissions
// granted (empty means denied).
type ConsentAnswer struct {
	ID      string   `json:"id"`
	Granted []string `json:"granted"`
	// Reason is "granted", "denied" or "timeout", for the audit trail;
	// "withdrawn" when the technician who asked left, "not_shown" when the
	// user's computer could not put the question (no decision of theirs),
	// "remembered" when the technician came back soon after leaving and
	// keeps what the user allowed them (no question was put).
	Reason string `json:"reason"`
}

func (a *ConsentAnswer) validate() error {
	return errors.Join(limit("id", a.ID, MaxIDSize), limit("reason", a.Reason, MaxIDSize), CheckPermissions(a.Granted))
}

// Grant is what one viewer may do.
type Grant struct {
	Viewer  string   `json:"viewer"`
	Granted []string `json:"granted"`
}

// ConsentState is the user's current will, sent whenever it changes: the
// grants of every admitted viewer, and whether the session is paused.
type ConsentState struct {
	Grants []Grant `json:"grants"`
	Paused bool    `json:"paused"`
	// Change describes what the user just did, for the audit trail, e.g.
	// "revoked control", "paused".
	Change string `json:"change,omitempty"`
}

func (s *ConsentState) validate() error {
	if len(s.Grants) > 64 {
		return fmt.Errorf("%w: %d grants", ErrMalformed, len(s.Grants))
	}
	errs := []error{limit("change", s.Change, MaxTextSize)}
	for _, g := range s.Grants {
		errs = append(errs, limit("viewer", g.Viewer, MaxIDSize), CheckPermissions(g.Granted))
	}
	return errors.Join(errs...)
}

// Permissions tells a viewer what it may do now.
type Permissions struct {
	Granted []string `json:"granted"`
	Paused  bool     `json:"paused"`
	// Pending is true while the user is being asked.
	Pending bool `json:"pending"`
	// Message says what happened, for the console, e.g. "The user denied
	// control."
	Message string `json:"message,omitempty"`
}

func (p *Permissions) validate() error {
	return errors.Join(CheckPermissions(p.Granted), limit("message", p.Message, MaxTextSize))
}

// PermissionRequest asks the user for more permissions mid-session.
type PermissionRequest struct {
	Permissions []string `json:"permissions"`
}

func (r *PermissionRequest) validate() error {
	if len(r.Permissions) == 0 {
		return fmt.Errorf("%w: nothing requested", ErrPermission)
	}
	return CheckPermissions(r.Permissions)
}
