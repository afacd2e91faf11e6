package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestSearchRecordings(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	day := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	users := map[string]*User{}
	for _, name := range []string{"Ana", "ben", "cy"} {
		u := technician(t, s, name, day)
		users[name] = u
	}
	type rec struct {
		id, ticket, tech, host string
		at                     time.Time
		shells, files          int
	}
	for i, r := range []rec{
		{"s1", "INC-100", "Ana", `{"hostname":"FIN-LT-01","os":"linux","width":1920}`, day, 1, 0},
		{"s2", "INC-200", "Ana", `{"hostname":"MKT-PC-7","os":"windows","width":1280}`, day.Add(24 * time.Hour), 0, 2},
		{"s3", "CHG_9%", "ben", `{"hostname":"FIN-LT-02","os":"linux","width":1920}`, day.Add(48 * time.Hour), 1, 1},
		{"s4", "INC-101", "cy", "", day.Add(72 * time.Hour), 0, 0},
	} {
		if err := s.CreateSession(ctx, &Session{ID: r.id, CodeHash: r.id, CodeExpiresAt: r.at, CreatedBy: users[r.tech].ID, TicketID: r.ticket, State: StateWaiting, CreatedAt: r.at}); err != nil {
			t.Fatal(err)
		}
		if r.host != "" {
			if err := s.SetSessionActive(ctx, r.id, r.host); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CreateRecording(ctx, r.id, r.at); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateRecording(ctx, &Recording{Session: r.id, State: "complete", StartedAt: r.at, Shells: r.shells, Files: r.files, SizeBytes: int64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	// ben was invited into s1.
	if err := s.AddParticipant(ctx, "s1", users["ben"].ID, users["Ana"].ID, day); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    RecordingFilter
		want []string
	}{
		{"all, newest first", RecordingFilter{}, []string{"s4", "s3", "s2", "s1"}},
		{"ticket substring", RecordingFilter{Ticket: "inc-10"}, []string{"s4", "s1"}},
		{"ticket wildcards are literal", RecordingFilter{Ticket: "_9%"}, []string{"s3"}},
		{"no wildcard match", RecordingFilter{Ticket: "%"}, []string{"s3"}},
		{"technician, any case", RecordingFilter{Technician: "ana"}, []string{"s2", "s1"}},
		// ben's own s3, and s1, which he was invited into.
		{"part of a technician's name, the sessions they worked", RecordingFilter{Technician: "BE"}, []string{"s3", "s1"}},
		{"technician wildcards are literal", RecordingFilter{Technician: "_"}, nil},
		{"user's computer", RecordingFilter{Host: "FIN-LT"}, []string{"s3", "s1"}},
		{"user's computer, any case", RecordingFilter{Host: "mkt-pc"}, []string{"s2"}},
		{"user's computer's OS", RecordingFilter{Host: "Windows"}, []string{"s2"}},
		{"a field's name is not a computer", RecordingFilter{Host: "hostname"}, nil},
		{"nor is what the host reports besides", RecordingFilter{Host: "1920"}, nil},
		{"nor the JSON around it", RecordingFilter{Host: `":"`}, nil},
		{"date range", RecordingFilter{From: day.Add(24 * time.Hour), To: day.Add(72 * time.Hour)}, []string{"s3", "s2"}},
		{"a shell was used", RecordingFilter{Shell: true}, []string{"s3", "s1"}},
		{"files were moved", RecordingFilter{Files: true}, []string{"s3", "s2"}},
		{"shell and files", RecordingFilter{Shell: true, Files: true}, []string{"s3"}},
		{"ben's own and invited", RecordingFilter{User: users["ben"].ID}, []string{"s3", "s1"}},
		{"cy's own", RecordingFilter{User: users["cy"].ID}, []string{"s4"}},
		{"limit", RecordingFilter{Limit: 1}, []string{"s4"}},
		{"limit of all there are", RecordingFilter{Limit: 4}, []string{"s4", "s3", "s2", "s1"}},
	} {
		got, more, err := s.SearchRecordings(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if want := tc.name == "limit"; more != want {
			t.Errorf("%s: more %v, want %v", tc.name, more, want)
		}
		var ids []string
		for _, r := range got {
			ids = append(ids, r.Session)
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, ids, tc.want)
		}
	}
	r, err := s.RecordingBySession(ctx, "s1")
	if err != nil || r.Technician != "Ana" || r.TicketID != "INC-100" || r.Shells != 1 || r.HostJSON == "" {
		t.Fatalf("recording s1: %+v %v", r, err)
	}
	if err := s.MarkRecordingDeleted(ctx, "s1", day.Add(100*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.AddEvent(ctx, &Event{Session: "s1", At: day.Add(100 * time.Hour), Actor: "broker", Type: "recording.deleted", Detail: `{"reason":"retention","retention_days":3}`}); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.RecordingBySession(ctx, "s1"); r.State != "deleted" || r.DeletedAt.IsZero() || r.DeletedBy != "broker" || r.DeletionJSON != `{"reason":"retention","retention_days":3}` {
		t.Errorf("after deletion: %+v", r)
	}
	if r, _ := s.RecordingBySession(ctx, "s2"); r.DeletedBy != "" || r.DeletionJSON != "" {
		t.Errorf("a recording not deleted has a deletion: %+v", r)
	}
}

// TestSearchRecordingsPages: page after page, each going on after the last
// recording of the one before, the search finds every recording once,
// those started in the same millisecond too.
func TestSearchRecordingsPages(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	day := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	u := technician(t, s, "ana", day)
	at := []time.Time{day.Add(time.Second), day, day, day, day.Add(-time.Second)}
	var want []string
	for i, started := range at {
		id := fmt.Sprintf("r%d", i)
		if err := s.CreateSession(ctx, &Session{ID: id, CodeHash: id, CodeExpiresAt: day, CreatedBy: u.ID, State: StateWaiting, CreatedAt: started}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateRecording(ctx, id, started); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	var got []string
	f := RecordingFilter{Limit: 2}
	for range len(at) {
		list, more, err := s.SearchRecordings(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list {
			got = append(got, r.Session)
		}
		if !more {
			break
		}
		f.After = list[len(list)-1]
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages of 2 hold %v, want %v", got, want)
	}
}

// TestSearchRecordingsAnyCase: "any case" holds for every letter, not only
// ASCII: büro finds BÜRO-PC, änderung finds ÄNDERUNG-7.
func TestSearchRecordingsAnyCase(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	day := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	u := technician(t, s, "ana", day)
	if err := s.CreateSession(ctx, &Session{ID: "s1", CodeHash: "s1", CodeExpiresAt: day, CreatedBy: u.ID, TicketID: "ÄNDERUNG-7", State: StateWaiting, CreatedAt: day}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSessionActive(ctx, "s1", `{"hostname":"BÜRO-PC","os":"windows"}`); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRecording(ctx, "s1", day); err != nil {
		t.Fatal(err)
	}
	for _, f := range []RecordingFilter{{Host: "büro"}, {Host: "BÜRO"}, {Ticket: "änderung"}, {Ticket: "Änderung-7"}} {
		if got, _, err := s.SearchRecordings(ctx, f); err != nil || len(got) != 1 {
			t.Errorf("search %+v found %d recordings (%v), want the one", f, len(got), err)
		}
	}
}
