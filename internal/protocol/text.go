package protocol

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Unprintable reports whether r may not appear in text shown to a person:
// control characters (C0, DEL and C1), which a terminal obeys (to set its
// title, its colours, even the clipboard), the line and paragraph
// separators, with which a name would add lines of its own to a question
// or a window that shows it, and the bidirectional controls, which make
// text read otherwise than it is ("evil\u202etxt.sh" shows as
// "evilhs.txt"). Joiners and other format characters that scripts need
// are allowed.
func Unprintable(r rune) bool {
	switch {
	case unicode.IsControl(r), r == '\u2028', r == '\u2029':
		return true
	case r == '\u061c', r == '\u200e', r == '\u200f', r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}

// Printable returns s with each rune Unprintable refuses, and each invalid
// byte, replaced by U+FFFD: for showing text that comes from elsewhere.
func Printable(s string) string {
	return strings.Map(func(r rune) rune {
		if Unprintable(r) {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
}

// checkText is limit for text shown to a person: it must also be printable.
func checkText(name, s string, max int) error {
	if err := limit(name, s, max); err != nil {
		return err
	}
	if strings.ContainsFunc(s, Unprintable) {
		return fmt.Errorf("%w: %s contains a control character, a line separator or a text direction mark", ErrMalformed, name)
	}
	return nil
}
