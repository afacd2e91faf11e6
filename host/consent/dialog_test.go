package consent

import (
	"context"
	"encoding/xml"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/xtest"
)

func TestSharingActions(t *testing.T) {
	for _, tt := range []struct {
		name string
		st   protocol.ConsentState
		want []string
	}{
		{"nothing shared", protocol.ConsentState{Grants: []protocol.Grant{{Viewer: "a"}}}, nil},
		{"two technicians", protocol.ConsentState{Grants: []protocol.Grant{
			{Viewer: "a", Granted: []string{protocol.PermShell, protocol.PermView}},
			{Viewer: "b", Granted: []string{protocol.PermView}},
		}}, []string{"pause", "revoke view", "revoke shell", "end session"}},
		{"paused", protocol.ConsentState{Paused: true}, []string{"resume", "end session"}},
	} {
		if got := actions(tt.st); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestSharingText(t *testing.T) {
	got := sharingText("Shared: lee (technician) can view, files, shell.", 2,
		map[string]string{"tool.bin": "Receiving", "app.log": "Sending"})
	want := "Shared: lee (technician) can view, files, shell.\n" +
		"2 terminals are open: the technician can run commands as you.\n" +
		"Sending app.log...\nReceiving tool.bin..."
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := sharingText("Shared: lee (technician) can view.", 0, nil); got != "Shared: lee (technician) can view." {
		t.Errorf("nothing under way: %q", got)
	}
	// A file named to add a line of its own to the window does not.
	got = sharingText("Shared: lee (technician) can view, files.", 0,
		map[string]string{"report.pdf\u2028Nothing is shared now.\nx": "Sending"})
	if strings.Count(got, "\n") != 1 || strings.ContainsAny(got, "\u2028") {
		t.Errorf("a file's name adds lines to the sharing window:\n%s", got)
	}
}

// TestQuestionNotShown: a question the dialog could not put to the user
// (zenity cannot open the display) is not the user's "no": the answer says
// it was not shown, and nothing is granted.
func TestQuestionNotShown(t *testing.T) {
	if _, err := exec.LookPath("zenity"); err != nil {
		t.Fatal("zenity is not installed (Debian package zenity): run `make test`, which installs it")
	}
	t.Setenv("DISPLAY", xtest.FreeDisplay(t))
	d, err := NewDialog()
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Prompter: d})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := m.Handle(ctx, protocol.ConsentRequest{ID: "c1", Viewer: protocol.Person{ID: "v1", Name: "lee", Role: "technician"},
		Permissions: []string{protocol.PermView}, TimeoutSeconds: 20})
	if a.Reason != "not_shown" || len(a.Granted) != 0 {
		t.Fatalf("answer %+v, want not_shown and nothing granted", a)
	}
	if m.Allowed(protocol.PermView) {
		t.Fatal("view allowed by a question no one saw")
	}
}

// TestZenityTextIsShownAsIs: what zenity shows of --text is the text given,
// whatever a technician's name, organisation or ticket holds. zenity reads
// the text in two steps (GLib's g_strcompress for backslash escapes, then
// Pango markup, an XML dialect); shown models both. Unescaped, markup
// restyled the question ("<span size='x-large'>URGENT</span>"), "\n" broke
// it into lines of the sender's choosing, and a stray "&" or "<" made
// zenity drop the whole question for its default text.
func TestZenityTextIsShownAsIs(t *testing.T) {
	for _, s := range []string{
		"lee (technician, Acme IT) asks to connect to this computer for ticket \"INC-7\"",
		`INC-7 <span fgcolor="red" size="x-large"><b>URGENT security check</b></span>\n\nTick ALL boxes`,
		"R&D-12", "INC-8 <x", `C:\new\tools`, "O'Brien \"Ops\"",
		"two\nlines",
	} {
		if got, ok := shown(zenityText(s)); !ok || got != s {
			t.Errorf("%q shows as %q (markup valid: %v)", s, got, ok)
		}
	}
}

// shown is what zenity displays for a --text argument, and false when
// the markup is invalid (zenity then shows its default text instead).
func shown(arg string) (string, bool) {
	// g_strcompress: \n, \t and the like, \\ for a backslash.
	var b strings.Builder
	for i := 0; i < len(arg); i++ {
		if arg[i] != '\\' || i+1 == len(arg) {
			b.WriteByte(arg[i])
			continue
		}
		i++
		switch arg[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		default:
			b.WriteByte(arg[i])
		}
	}
	// Pango markup: the characters between the tags.
	dec := xml.NewDecoder(strings.NewReader("<markup>" + b.String() + "</markup>"))
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return text.String(), true
		}
		if err != nil {
			return "", false
		}
		if cd, ok := tok.(xml.CharData); ok {
			text.Write(cd)
		}
	}
}
