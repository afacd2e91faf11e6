package protocol

import "testing"

// TestPrintable: text from elsewhere is shown as words: what a terminal
// would obey, what would start a line of its own, and what would make it
// read otherwise, becomes U+FFFD, while
// the joiners that Persian or emoji need stay.
func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"fixed the printer":             "fixed the printer",
		"bye\x1b]0;PWNED\x07":           "bye\ufffd]0;PWNED\ufffd",
		"next\u0085line":                "next\ufffdline",
		"evil\u202etxt.sh":              "evil\ufffdtxt.sh",
		"a.pdf\u2028PAUSED\u2029x":      "a.pdf\ufffdPAUSED\ufffdx",
		"\u0645\u06cc\u200c\u062e.txt":  "\u0645\u06cc\u200c\u062e.txt",
		"\U0001F469\u200d\U0001F4BB ok": "\U0001F469\u200d\U0001F4BB ok",
		"bad \xff byte":                 "bad \ufffd byte",
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}
