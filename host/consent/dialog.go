package consent

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/tether-support/tether/internal/protocol"
)

// Dialog asks with a native dialog: zenity on Linux desktops.
type Dialog struct {
	zenity string
}

// NewDialog finds zenity; it fails when the desktop has no dialog tool.
func NewDialog() (*Dialog, error) {
	path, err := exec.LookPath("zenity")
	if err != nil {
		return nil, fmt.Errorf("%w (zenity not found)", ErrNoFrontEnd)
	}
	return &Dialog{zenity: path}, nil
}

// Name is the front end's name for the log.
func (d *Dialog) Name() string { return "dialog (zenity)" }

// Ask shows a checklist of the requested permissions with Allow and Deny.
func (d *Dialog) Ask(ctx context.Context, req protocol.ConsentRequest) ([]string, error) {
	text := question(req) + ".\nTick what you allow. No answer in " + strconv.Itoa(req.TimeoutSeconds) + " seconds means no."
	args := []string{"--list", "--checklist", "--title", "Tether: remote support request", "--text", text,
		"--column", "Allow", "--column", "Permission", "--column", "What it lets them do",
		"--ok-label", "Allow", "--cancel-label", "Deny", "--separator", ",",
		"--timeout", strconv.Itoa(req.TimeoutSeconds), "--width", "520", "--height", "360"}
	for _, p := range req.Permissions {
		args = append(args, "FALSE", p, Descriptions[p])
	}
	out, err := exec.CommandContext(ctx, d.zenity, args...).Output()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.As(err, &exit) && exit.ExitCode() == 5: // zenity's own timeout
		return nil, context.DeadlineExceeded
	case errors.As(err, &exit): // Deny or the window closed
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("zenity: %w", err)
	}
	return parseAnswer(strings.TrimSpace(string(out)), req.Permissions), nil
}

// Serve shows, for the life of the session, a small window with what is
// shared and the user's choices: revoke a permission, pause, resume, end.
func (d *Dialog) Serve(ctx context.Context, m *Manager) {
	for ctx.Err() == nil {
		args := []string{"--list", "--radiolist", "--title", "Tether: sharing this computer", "--text", m.Status(),
			"--column", "", "--column", "Action", "--ok-label", "Do it", "--cancel-label", "Hide for a minute",
			"--width", "520", "--height", "340", "--hide-header"}
		actions := []string{"pause", "resume", "end session"}
		for _, p := range protocol.AllPermissions {
			actions = append(actions, "revoke "+p)
		}
		for i, a := range actions {
			args = append(args, map[bool]string{true: "TRUE", false: "FALSE"}[i == 0], a)
		}
		out, err := exec.CommandContext(ctx, d.zenity, args...).Output()
		if ctx.Err() != nil {
			return
		}
		if err != nil { // hidden: show again after a while
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Minute):
			}
			continue
		}
		switch action := strings.TrimSpace(string(out)); {
		case action == "pause":
			m.SetPaused(true)
		case action == "resume":
			m.SetPaused(false)
		case action == "end session":
			m.End()
			return
		case strings.HasPrefix(action, "revoke "):
			m.Revoke(strings.TrimPrefix(action, "revoke "))
		}
	}
}
