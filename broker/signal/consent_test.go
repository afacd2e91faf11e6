package signal

import "testing"

func TestConsentMessage(t *testing.T) {
	for _, tc := range []struct {
		reason         string
		asked, granted []string
		want           string
	}{
		{"", []string{"view", "control"}, []string{"view", "control"}, "The user allowed view and control."},
		{"", []string{"view", "control", "files"}, []string{"view", "files"}, "The user allowed view and file transfer only."},
		{"", []string{"view", "control", "clipboard", "shell"}, []string{"view", "control", "clipboard", "shell"}, "The user allowed view, control, clipboard and shell."},
		{"", []string{"files"}, []string{"files"}, "The user allowed file transfer."},
		{"", []string{"view"}, nil, "The user declined."},
		{"timeout", []string{"view"}, nil, "The user did not answer in time."},
	} {
		if got := consentMessage(tc.reason, tc.asked, tc.granted); got != tc.want {
			t.Errorf("consentMessage(%q, %v, %v) = %q, want %q", tc.reason, tc.asked, tc.granted, got, tc.want)
		}
	}
}
