package joblog

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A job that fails every second for two minutes logs its first failure
// and a reminder a minute, not 120 lines; and once when it works again.
func TestFailingLogsOnceAMinute(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	f := Failing{What: "end the sessions whose support code expired"}
	start := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	f.Worked(log, start)
	for s := range 120 {
		f.Failed(log, start.Add(time.Duration(s)*time.Second), errors.New("file is not a database"))
	}
	f.Worked(log, start.Add(2*time.Minute))
	f.Worked(log, start.Add(2*time.Minute+time.Second))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		`level=ERROR msg="cannot end the sessions whose support code expired; the broker keeps trying and logs when it works again" err="file is not a database"`,
		`level=ERROR msg="still cannot end the sessions whose support code expired; the broker keeps trying" failing_for=1m0s err="file is not a database"`,
		`level=INFO msg="can end the sessions whose support code expired again" failed_for=2m0s`,
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.HasSuffix(lines[i], w) {
			t.Errorf("line %d = %s\nwant it to end in %s", i+1, lines[i], w)
		}
	}
}
