package consent

import (
	"slices"
	"testing"

	"github.com/tether-support/tether/internal/protocol"
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
}
