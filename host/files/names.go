package files

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/tether-support/tether/internal/protocol"
)

// ErrPath is wrapped by every refusal of a name or path.
var ErrPath = errors.New("invalid path")

// windowsReserved are device names Windows refuses whatever the extension.
var windowsReserved = map[string]bool{
	"CON": true, "PRN": true, "AUX": true, "NUL": true,
	"COM1": true, "COM2": true, "COM3": true, "COM4": true, "COM5": true, "COM6": true, "COM7": true, "COM8": true, "COM9": true,
	"LPT1": true, "LPT2": true, "LPT3": true, "LPT4": true, "LPT5": true, "LPT6": true, "LPT7": true, "LPT8": true, "LPT9": true,
	// The superscript digits are ports too, and so are 0 on some versions;
	// CONIN$ and CONOUT$ are the console.
	"COM0": true, "COM¹": true, "COM²": true, "COM³": true, "LPT0": true, "LPT¹": true, "LPT²": true, "LPT³": true,
	"CONIN$": true, "CONOUT$": true,
}

// CheckName accepts a file name that is valid on goos: one component, no
// separators, no control characters, within the length limit, and on
// Windows none of its reserved characters and names.
func CheckName(name, goos string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the file has no name", ErrPath)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q is not a file name", ErrPath, name)
	case len(name) > protocol.MaxName:
		return refusal(fmt.Sprintf("The file's name is too long: %d bytes, where the user's computer allows at most %d (an accented letter takes 2 or more). Rename it with a shorter name and send it again.", len(name), protocol.MaxName))
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: the name is not valid UTF-8", ErrPath)
	case strings.ContainsAny(name, `/\`):
		return fmt.Errorf("%w: %q contains a path separator", ErrPath, name)
	}
	// A direction mark would make "evil\u202etxt.sh" read "evilhs.txt"
	// where the user sees it arrive.
	if strings.ContainsFunc(name, protocol.Unprintable) {
		return fmt.Errorf("%w: %q contains a control character, a line separator or a text direction mark", ErrPath, name)
	}
	if goos == "windows" {
		if strings.ContainsAny(name, `<>:"|?*`) {
			return fmt.Errorf("%w: %q contains a character Windows does not allow (<>:\"|?*)", ErrPath, name)
		}
		if strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
			return fmt.Errorf("%w: Windows does not allow a name ending in a dot or a space", ErrPath)
		}
		base, _, _ := strings.Cut(name, ".")
		if windowsReserved[strings.ToUpper(strings.TrimRight(base, " "))] {
			return fmt.Errorf("%w: %q is a device name on Windows", ErrPath, name)
		}
	}
	return nil
}

// The host's own files for uploads still arriving are named
// .tether-<hash>-<size>.part in the inbox.
const (
	partialPrefix = ".tether-"
	partialSuffix = ".part"
)

// refusal is a name refused with a sentence the technician reads as it
// is; it is an ErrPath.
type refusal string

func (r refusal) Error() string { return string(r) }
func (r refusal) Unwrap() error { return ErrPath }

// CheckUploadName accepts the name of a file sent to the user: a name
// valid on goos (CheckName) that does not start with a dot. A file whose
// name starts with a dot is hidden from the user, and such names
// (.bashrc, .profile) are the settings files programs read or run when
// they start: a file sent to the user is one they can see, never one
// that could change how their computer starts were the inbox ever their
// home. Nor may it be named as the host's own partial files are, which
// it would pass for: resumed from, or removed with them.
func CheckUploadName(name, goos string) error {
	if err := CheckName(name, goos); err != nil {
		return err
	}
	switch {
	case strings.HasPrefix(name, partialPrefix) && strings.HasSuffix(name, partialSuffix):
		return refusal(fmt.Sprintf("%q is named like the files the user's computer keeps for transfers still arriving. Rename it and send it again.", name))
	case strings.HasPrefix(name, "."):
		return refusal(fmt.Sprintf("%q starts with a dot, which hides it from the user, and names like it are for settings files that programs read when they start. Rename it so that it does not start with a dot, and send it again.", name))
	}
	return nil
}

// cleanRel turns a path the technician sent into a clean path relative to
// the root ("." for the root itself). Absolute paths and any ".."
// component are refused outright rather than resolved: asking for them is
// an attempt to leave the root.
// HomeRelative writes a path in the user's home as ~/Downloads/Tether/x,
// as the user knows it, and the home itself as ~.
func HomeRelative(path string) string {
	home, err := os.UserHomeDir()
	if err != nil {
		return path
	}
	rel, err := filepath.Rel(home, path)
	switch {
	case err != nil || rel == ".." || strings.HasPrefix(rel, "../"):
		return path
	case rel == ".":
		return "~"
	}
	return "~/" + rel
}

func cleanRel(p string) (string, error) {
	if strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("%w: the path contains a NUL byte", ErrPath)
	}
	if strings.Contains(p, `\`) {
		return "", fmt.Errorf("%w: use / to separate folders", ErrPath)
	}
	if strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%w: %q is absolute; paths are relative to the shared folder", ErrPath, p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: %q leaves the shared folder", ErrPath, p)
		}
	}
	c := path.Clean(p)
	if c == "" {
		c = "."
	}
	return c, nil
}
