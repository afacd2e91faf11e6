package e2e

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/signal"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/xtest"
)

// scrape is one answer of /metrics, parsed: each series (its name and its
// labels as written) with its value, and each metric's type.
type scrape struct {
	series map[string]float64
	types  map[string]string
}

var (
	metricName  = `[a-zA-Z_:][a-zA-Z0-9_:]*`
	helpLine    = regexp.MustCompile(`^# HELP (` + metricName + `) (.*)$`)
	typeLine    = regexp.MustCompile(`^# TYPE (` + metricName + `) (counter|gauge|untyped|summary|histogram)$`)
	sampleLine  = regexp.MustCompile(`^(` + metricName + `)(\{.*\})? (\S+)$`)
	labelPair   = regexp.MustCompile(`^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"`)
	lowCardinal = map[string][]string{ // the values each label may take
		"state":      {"waiting", "active"},
		"reason":     {"password", "two_factor_code"},
		"outcome":    {"succeeded", "failed"},
		"from":       {"host", "viewer"},
		"channel":    {"video", "files", "shell", "control"},
		"cause":      signal.EndCauses,
		"version":    nil, // one value, the build's
		"go_version": nil,
	}
)

// parseMetrics checks text against the Prometheus text exposition format
// (0.0.4) and the broker's own rules: every sample's metric has a TYPE
// given before it, HELP and TYPE once per metric, no series twice,
// counters named _total, and labels from small fixed sets.
func parseMetrics(t *testing.T, text string) scrape {
	t.Helper()
	s := scrape{series: map[string]float64{}, types: map[string]string{}}
	helps := map[string]bool{}
	if !strings.HasSuffix(text, "\n") {
		t.Errorf("the exposition does not end in a newline")
	}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		n := i + 1
		switch {
		case strings.HasPrefix(line, "# HELP "):
			m := helpLine.FindStringSubmatch(line)
			if m == nil || m[2] == "" {
				t.Errorf("line %d: bad HELP: %q", n, line)
				continue
			}
			if helps[m[1]] {
				t.Errorf("line %d: second HELP for %s", n, m[1])
			}
			helps[m[1]] = true
		case strings.HasPrefix(line, "# TYPE "):
			m := typeLine.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("line %d: bad TYPE: %q", n, line)
				continue
			}
			if s.types[m[1]] != "" {
				t.Errorf("line %d: second TYPE for %s", n, m[1])
			}
			s.types[m[1]] = m[2]
			if m[2] == "counter" && !strings.HasSuffix(m[1], "_total") {
				t.Errorf("line %d: counter %s is not named _total", n, m[1])
			}
		case strings.HasPrefix(line, "#") || line == "":
			t.Errorf("line %d: neither HELP, TYPE nor a sample: %q", n, line)
		default:
			m := sampleLine.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("line %d: bad sample: %q", n, line)
				continue
			}
			name, labels, value := m[1], m[2], m[3]
			if s.types[name] == "" {
				t.Errorf("line %d: sample of %s, which has no TYPE before it", n, name)
			}
			if !helps[name] {
				t.Errorf("line %d: sample of %s, which has no HELP", n, name)
			}
			v, err := strconv.ParseFloat(value, 64)
			if err != nil || math.IsNaN(v) {
				t.Errorf("line %d: value %q is not a number", n, value)
			}
			if s.types[name] == "counter" && v < 0 {
				t.Errorf("line %d: counter below zero", n)
			}
			if labels != "" {
				checkLabels(t, n, strings.TrimSuffix(strings.TrimPrefix(labels, "{"), "}"))
			}
			key := name + labels
			if _, dup := s.series[key]; dup {
				t.Errorf("line %d: series %s twice", n, key)
			}
			s.series[key] = v
		}
	}
	return s
}

// checkLabels checks the labels of a sample: name="value" pairs, each name
// once, from the broker's few fixed values.
func checkLabels(t *testing.T, n int, list string) {
	t.Helper()
	seen := map[string]bool{}
	for list != "" {
		m := labelPair.FindStringSubmatch(list)
		if m == nil {
			t.Errorf("line %d: bad labels at %q", n, list)
			return
		}
		if seen[m[1]] {
			t.Errorf("line %d: label %s twice", n, m[1])
		}
		seen[m[1]] = true
		allowed, known := lowCardinal[m[1]]
		if !known || (allowed != nil && !slices.Contains(allowed, m[2])) {
			t.Errorf("line %d: label %s=%q is not one of the fixed labels and values", n, m[1], m[2])
		}
		list = strings.TrimPrefix(list[len(m[0]):], ",")
	}
}

// value is the series' value; the test fails when it is not exposed.
func (s scrape) value(t *testing.T, series string) float64 {
	t.Helper()
	v, ok := s.series[series]
	if !ok {
		t.Fatalf("no series %s in the metrics", series)
	}
	return v
}

// getMetrics fetches /metrics with token: its status and body.
func getMetrics(t *testing.T, b *broker, token string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", b.URL()+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := b.httpClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// TestMetrics: /metrics in the Prometheus text format, for a key with
// metrics:read only, counting a real session (a host under Xvfb and a
// viewer) as it goes live and ends.
func TestMetrics(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hc := b.httpClient(t)
	newKey := func(body string) string {
		t.Helper()
		status, out := apiCall(t, hc, "POST", b.URL()+"/api/v1/keys", b.admin.APIKey, body, nil)
		if status != 201 {
			t.Fatalf("create key %s: %d %v", body, status, out)
		}
		return out["key"].(string)
	}
	if err := b.CreateUser(ctx, "tina", "tina-password-1", "technician"); err != nil {
		t.Fatal(err)
	}
	scraper := newKey(`{"name":"prometheus","scopes":["metrics:read"]}`)
	// A technician's role does not hold the scope: no key of theirs can.
	if status, out := apiCall(t, hc, "POST", b.URL()+"/api/v1/keys", b.admin.APIKey, `{"name":"x","username":"tina","scopes":["metrics:read"]}`, nil); status != 400 && status != 403 {
		t.Errorf("a technician's key with metrics:read: %d %v", status, out)
	}
	for _, c := range []struct {
		what, token string
		want        int
	}{
		{"no credentials", "", 401},
		{"a wrong key", "tth_not-a-key", 401},
		{"a technician's key", newKey(`{"name":"tina's","username":"tina","scopes":["sessions:read"]}`), 403},
		{"a technician's login", b.loginToken(t, "tina", "tina-password-1"), 403},
		{"an admin's key without the scope", newKey(`{"name":"reader","scopes":["sessions:read"]}`), 403},
	} {
		status, _, body := getMetrics(t, b, c.token)
		if status != c.want {
			t.Errorf("%s: %d, want %d", c.what, status, c.want)
		}
		if strings.Contains(body, "tether_") {
			t.Errorf("%s: the answer shows metrics: %.200s", c.what, body)
		}
	}

	read := func() scrape {
		t.Helper()
		status, header, body := getMetrics(t, b, scraper)
		if status != 200 {
			t.Fatalf("scrape: %d %s", status, body)
		}
		if ct := header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
		return parseMetrics(t, body)
	}
	s := read()
	for _, name := range []string{"tether_sessions", "tether_hosts_connected", "tether_viewers_connected", "tether_sessions_created_total",
		"tether_sessions_started_total", "tether_sessions_ended_total", "tether_sign_in_failures_total", "tether_sign_in_lockouts_total",
		"tether_sign_ins_with_recovery_code_total",
		"tether_webhook_deliveries_total", "tether_webhook_deliveries_pending", "tether_recordings_in_progress", "tether_recordings_failed_total",
		"tether_relay_received_bytes_total",
		"process_start_time_seconds", "process_resident_memory_bytes", "go_goroutines", "go_memstats_heap_inuse_bytes", "tether_build_info"} {
		if s.types[name] == "" {
			t.Errorf("metric %s is missing", name)
		}
	}
	if v := s.value(t, `tether_sessions{state="active"}`); v != 0 {
		t.Errorf("active sessions before any: %v", v)
	}
	relayed := func(s scrape, from, channel string) float64 {
		t.Helper()
		return s.value(t, fmt.Sprintf(`tether_relay_received_bytes_total{from=%q,channel=%q}`, from, channel))
	}
	for _, c := range [][2]string{{"host", "video"}, {"host", "files"}, {"viewer", "files"}, {"host", "shell"}, {"viewer", "shell"}, {"host", "control"}, {"viewer", "control"}} {
		if v := relayed(s, c[0], c[1]); v != 0 {
			t.Errorf("bytes relayed from %s on %s before any session: %v", c[0], c[1], v)
		}
	}
	if v := s.value(t, "process_resident_memory_bytes"); v < 1<<20 {
		t.Errorf("resident memory %v bytes", v)
	}
	if start := s.value(t, "process_start_time_seconds"); math.Abs(start-float64(time.Now().Unix())) > 3600 {
		t.Errorf("process start time %v", start)
	}

	// A wrong password counts as a sign-in failure.
	apiCall(t, hc, "POST", b.URL()+"/api/v1/login", "", `{"username":"tina","password":"not-her-password"}`, nil)
	if v := read().value(t, `tether_sign_in_failures_total{reason="password"}`); v != 1 {
		t.Errorf("sign-in failures after one wrong password: %v", v)
	}
	// A sign-in with a recovery code is counted: it is worth an alert.
	if v := read().value(t, "tether_sign_ins_with_recovery_code_total"); v != 0 {
		t.Errorf("sign-ins with a recovery code before any: %v", v)
	}
	tok := b.loginToken(t, "tina", "tina-password-1")
	_, enrol := apiCall(t, hc, "POST", b.URL()+"/api/v1/me/totp", tok, `{"password":"tina-password-1"}`, nil)
	code, _ := auth.TOTPCode(enrol["secret"].(string), b.now())
	_, confirmed := apiCall(t, hc, "POST", b.URL()+"/api/v1/me/totp/confirm", tok, `{"code":"`+code+`"}`, nil)
	recovery := confirmed["recovery_codes"].([]any)[0].(string)
	if status, out := apiCall(t, hc, "POST", b.URL()+"/api/v1/login", "", `{"username":"tina","password":"tina-password-1","totp":"`+recovery+`"}`, nil); status != 200 {
		t.Fatalf("sign-in with a recovery code: %d %v", status, out)
	}
	if v := read().value(t, "tether_sign_ins_with_recovery_code_total"); v != 1 {
		t.Errorf("sign-ins with a recovery code after one: %v", v)
	}

	c := b.client(t)
	sess, err := c.CreateSession(ctx, "INC-7", protocol.PermView, protocol.PermFiles)
	if err != nil {
		t.Fatal(err)
	}
	s = read()
	if v := s.value(t, `tether_sessions{state="waiting"}`); v != 1 {
		t.Errorf("waiting sessions with one code out: %v", v)
	}
	if v := s.value(t, "tether_sessions_created_total"); v != 1 {
		t.Errorf("sessions created: %v", v)
	}
	j, err := c.Join(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	host := runHostEnv(t, display, true, []string{"HOME=" + t.TempDir()}, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)
	if _, err := j.Screenshot(ctx); err != nil {
		t.Fatalf("screenshot: %v\n%s", err, host.stderr.String())
	}
	// A file pushed to the user's computer: its bytes cross from the
	// technician, the user's computer's answers the other way.
	if _, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return has(p, protocol.PermFiles) }); err != nil {
		t.Fatalf("%v\nhost:\n%s", err, host.stderr.String())
	}
	files, err := j.Files(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const size = 300 << 10
	src, _ := randomFile(t, t.TempDir(), "tool.bin", size)
	if _, err := files.Push(ctx, src, "", nil); err != nil {
		t.Fatalf("push: %v\nhost:\n%s", err, host.stderr.String())
	}
	s = read()
	if v := relayed(s, "viewer", "files"); v < size || v > size+16<<10 {
		t.Errorf("bytes relayed from the technician on files after a %d-byte push: %v", size, v)
	}
	for _, c := range [][2]string{{"host", "video"}, {"host", "files"}, {"host", "control"}} {
		if v := relayed(s, c[0], c[1]); v <= 0 {
			t.Errorf("bytes relayed from %s on %s with a session live: %v", c[0], c[1], v)
		}
	}
	for series, want := range map[string]float64{
		`tether_sessions{state="active"}`:  1,
		`tether_sessions{state="waiting"}`: 0,
		"tether_hosts_connected":           1,
		"tether_viewers_connected":         1,
		"tether_sessions_started_total":    1,
		"tether_recordings_in_progress":    1,
	} {
		if v := s.value(t, series); v != want {
			t.Errorf("with a session live, %s = %v, want %v", series, v, want)
		}
	}
	// Every cause has its series, before any session of that cause ended.
	for _, cause := range signal.EndCauses {
		s.value(t, fmt.Sprintf("tether_sessions_ended_total{cause=%q}", cause))
	}
	endedBy := func(s scrape, cause string) float64 {
		return s.value(t, fmt.Sprintf("tether_sessions_ended_total{cause=%q}", cause))
	}
	ended, endedByUser := endedBy(s, "technician"), endedBy(s, "user")

	if err := c.EndSession(ctx, sess.ID); err != nil {
		t.Fatal(err)
	}
	if code := host.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("host exit code %d; stderr:\n%s", code, host.stderr.String())
	}
	// The viewer's connection closes a moment after the end.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s = read()
		var wrong []string
		for series, want := range map[string]float64{
			`tether_sessions{state="active"}`:                 0,
			"tether_hosts_connected":                          0,
			"tether_viewers_connected":                        0,
			`tether_sessions_ended_total{cause="technician"}`: ended + 1,
			`tether_sessions_ended_total{cause="user"}`:       endedByUser,
		} {
			if v := s.value(t, series); v != want {
				wrong = append(wrong, fmt.Sprintf("%s = %v, want %v", series, v, want))
			}
		}
		if len(wrong) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the session ended: %s", strings.Join(wrong, "; "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
