package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-support/tether/certs"
	"github.com/tether-support/tether/internal/launch"
)

// writePair issues a certificate for localhost from a development CA in
// dir and writes it and its key where a broker's -tls-cert and -tls-key
// would find them. It returns the CA's file.
func writePair(t *testing.T, dir, certFile, keyFile string, now time.Time) string {
	t.Helper()
	c, caFile, err := certs.Dev(dir, []string{"localhost", "127.0.0.1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	var chain []byte
	for _, der := range c.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, chain, 0o644); err != nil {
		t.Fatal(err)
	}
	return caFile
}

// TestOwnCertificate: with -tls-cert and -tls-key the broker serves the
// admin's certificate, which clients trust without -ca, and a renewed one
// replaces it without a restart.
func TestOwnCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "broker.pem"), filepath.Join(dir, "broker.key")
	caFile := writePair(t, filepath.Join(dir, "ca"), certFile, keyFile, time.Now())
	cfg := testConfig(t, filepath.Join(dir, "data"))
	cfg.TLSCertFile, cfg.TLSKeyFile = certFile, keyFile
	b, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if b.CAFile() != "" {
		t.Errorf("a development CA is offered (%s) while the admin's certificate is served", b.CAFile())
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "certs")); err == nil {
		t.Error("a development CA was made though the admin gave a certificate")
	}
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(caFile)
	pool.AppendCertsFromPEM(caPEM)
	served := func() *x509.Certificate {
		t.Helper()
		conn, err := tls.Dial("tcp", strings.TrimPrefix(b.URL(), "https://"), &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if err != nil {
			t.Fatalf("a client trusting the admin's CA: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}
	first := served()
	if resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}).Get(b.URL() + "/api/v1/openapi.yaml"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("HTTPS with the admin's certificate: %v", err)
	}

	// The certificate is renewed on disk: the broker serves the new one
	// once it looks again, without a restart.
	writePair(t, filepath.Join(dir, "ca"), certFile, keyFile, time.Now())
	os.Chtimes(certFile, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	b.certs.mu.Lock()
	b.certs.checked = time.Time{} // as if a minute had passed
	b.certs.mu.Unlock()
	if renewed := served(); renewed.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("the renewed certificate is not served")
	}
}

// TestRenewalCertificateThenKey: a renewal that copies the new certificate
// first and its key a while later is caught between the two. The broker
// says once that the files do not make a pair, goes on serving the
// previous certificate, and serves the new one once the key is there too.
func TestRenewalCertificateThenKey(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "broker.pem"), filepath.Join(dir, "broker.key")
	caFile := writePair(t, filepath.Join(dir, "ca"), certFile, keyFile, time.Now())
	cfg := testConfig(t, filepath.Join(dir, "data"))
	cfg.TLSCertFile, cfg.TLSKeyFile = certFile, keyFile
	var log logBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&log, nil))
	b, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() { cancel(); <-done }()
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(caFile)
	pool.AppendCertsFromPEM(caPEM)
	// served is the certificate a client gets once the broker has looked
	// at the files again, as it does every minute.
	served := func() *x509.Certificate {
		t.Helper()
		b.certs.mu.Lock()
		b.certs.checked = time.Time{}
		b.certs.mu.Unlock()
		conn, err := tls.Dial("tcp", strings.TrimPrefix(b.URL(), "https://"), &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}
	first := served()

	newCert, newKey := filepath.Join(dir, "new.pem"), filepath.Join(dir, "new.key")
	writePair(t, filepath.Join(dir, "ca"), newCert, newKey, time.Now())
	copyFile := func(from, to string) {
		t.Helper()
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(newCert, certFile) // the old key is still there
	for range 3 {
		if got := served(); !got.Equal(first) {
			t.Fatal("a certificate other than the previous one is served while the key does not match")
		}
	}
	const warning = "a new TLS certificate cannot be used yet, so the previous one is still served"
	if n := strings.Count(log.String(), warning); n != 1 {
		t.Errorf("the half-renewed files were reported %d times, want once:\n%s", n, log.String())
	}

	copyFile(newKey, keyFile)
	renewed := served()
	if renewed.Equal(first) {
		t.Fatal("the renewed certificate is not served once its key is there too")
	}
	if !strings.Contains(log.String(), `msg="a new TLS certificate is in use"`) {
		t.Errorf("the new certificate was not logged:\n%s", log.String())
	}
	if n := strings.Count(log.String(), warning); n != 1 {
		t.Errorf("the half-renewed files were reported %d times, want once:\n%s", n, log.String())
	}
}

// TestDevCertificateRenewed: the development certificate is issued again
// before it expires, for a broker that runs for months.
func TestDevCertificateRenewed(t *testing.T) {
	now := time.Now()
	src := &certSource{now: func() time.Time { return now }, devDir: t.TempDir(), devNames: []string{"localhost"}}
	first, err := src.get()
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(30 * 24 * time.Hour)
	if same, _ := src.get(); same != first {
		t.Fatal("reissued a month into its 90 days")
	}
	now = first.Leaf.NotAfter.Add(-renewBefore + time.Hour)
	renewed, err := src.get()
	if err != nil || renewed == first || !renewed.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Fatalf("near its end the certificate was not issued again: %v", err)
	}
}

// TestBadCertificateFiles: files that are missing, expired or half a pair
// stop the broker at start with a sentence that names them.
func TestBadCertificateFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "broker.pem"), filepath.Join(dir, "broker.key")
	writePair(t, filepath.Join(dir, "old-ca"), certFile, keyFile, time.Now().Add(-200*24*time.Hour))
	for _, c := range []struct {
		cert, key, want string
	}{
		{certFile, keyFile, "expired on"},
		{filepath.Join(dir, "missing.pem"), keyFile, "missing.pem"},
		{certFile, "", "give both -tls-cert and -tls-key"},
	} {
		cfg := testConfig(t, filepath.Join(dir, "data"))
		cfg.TLSCertFile, cfg.TLSKeyFile = c.cert, c.key
		_, err := New(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("-tls-cert %q -tls-key %q: %v, want an error saying %q", c.cert, c.key, err, c.want)
		}
	}
}

// TestRetentionOutOfRange: a negative number of days is a mistake to say,
// not a quiet "keep everything"; so is one past a century, which once came
// out as a cutoff in the future and deleted every archive at start.
func TestRetentionOutOfRange(t *testing.T) {
	for _, days := range []int{-5, 200000} {
		cfg := testConfig(t, t.TempDir())
		cfg.Recording = RecordingConfig{RetentionDays: days}
		_, err := New(context.Background(), cfg)
		if want := fmt.Sprintf("-retention-days %d: give a number of days up to 36500", days); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("-retention-days %d: %v, want %q", days, err, want)
		}
	}
}

// TestCertificateEndIsTold: the admin's certificate, not renewed, is
// warned of in the log once a day from two weeks before its end; once it
// has ended, the log says so and the health check fails (clients refuse
// the broker, whatever else works). One for another name than users reach
// the broker by, or not valid yet, is warned of as it is loaded.
func TestCertificateEndIsTold(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "broker.pem"), filepath.Join(dir, "broker.key")
	writePair(t, filepath.Join(dir, "ca"), certFile, keyFile, time.Now())
	var logs bytes.Buffer
	now := time.Now()
	src := &certSource{now: func() time.Time { return now }, log: slog.New(slog.NewTextHandler(&logs, nil)),
		certFile: certFile, keyFile: keyFile, name: "support.example.com"}
	c, err := src.get()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "does not cover the name users reach the broker by") || !strings.Contains(logs.String(), "support.example.com") {
		t.Errorf("a certificate for localhost served as support.example.com, without a word:\n%s", logs.String())
	}
	if _, ok := src.expired(); ok {
		t.Fatal("a fresh certificate reads as expired")
	}
	now = c.Leaf.NotAfter.Add(-7 * 24 * time.Hour)
	src.get()
	if !strings.Contains(logs.String(), "ends soon and has not been renewed") {
		t.Errorf("a week before its end, nothing said:\n%s", logs.String())
	}
	now = c.Leaf.NotAfter.Add(time.Hour)
	src.get()
	if !strings.Contains(logs.String(), "has expired and was not renewed") {
		t.Errorf("after its end, nothing said:\n%s", logs.String())
	}
	if end, ok := src.expired(); !ok || !end.Equal(c.Leaf.NotAfter) {
		t.Errorf("expired() = %v %v after the end", end, ok)
	}
}

// TestSessionSaysWhetherHostNeedsCA: the answer to creating a session says
// whether a host the user runs by hand needs -ca, as the console's command
// shows it, and the host the join page offers agrees: the development CA
// built in exactly when it is needed.
func TestSessionSaysWhetherHostNeedsCA(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "broker.pem"), filepath.Join(dir, "broker.key")
	ownCA := writePair(t, filepath.Join(dir, "ca"), certFile, keyFile, time.Now())
	hostBin := filepath.Join(dir, "host")
	if err := os.WriteFile(hostBin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		config func(*Config)
		want   bool
	}{
		{"development CA", func(*Config) {}, true},
		{"own certificate", func(c *Config) { c.TLSCertFile, c.TLSKeyFile = certFile, keyFile }, false},
		{"behind a reverse proxy", func(c *Config) { c.PublicURL = "https://support.example.com" }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			cfg.HostBinary = hostBin
			c.config(&cfg)
			b, err := New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- b.Run(ctx) }()
			defer func() { cancel(); <-done }()

			// Straight to the broker's port, past any proxy.
			ca := ownCA
			if b.CAFile() != "" {
				ca = b.CAFile()
			}
			pool := x509.NewCertPool()
			caPEM, _ := os.ReadFile(ca)
			pool.AppendCertsFromPEM(caPEM)
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
			base := "https://" + b.port.Addr().String()
			var admin struct {
				APIKey string `json:"api_key"`
			}
			if data, err := os.ReadFile(b.InitialAdminPath()); err != nil || json.Unmarshal(data, &admin) != nil {
				t.Fatalf("initial admin: %v", err)
			}
			req, _ := http.NewRequest("POST", base+"/api/v1/sessions", strings.NewReader(`{"ticket":{"id":"INC-CA"}}`))
			req.Header.Set("Authorization", "Bearer "+admin.APIKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var sess struct {
				Code       string `json:"code"`
				NeedsDevCA *bool  `json:"needs_dev_ca"`
			}
			err = json.NewDecoder(resp.Body).Decode(&sess)
			resp.Body.Close()
			if resp.StatusCode != 201 || err != nil {
				t.Fatalf("create: %d %v", resp.StatusCode, err)
			}
			if sess.NeedsDevCA == nil || *sess.NeedsDevCA != c.want {
				t.Fatalf("needs_dev_ca = %v, want %v", sess.NeedsDevCA, c.want)
			}

			resp, err = hc.Get(base + "/join/" + sess.Code + "/host")
			if err != nil {
				t.Fatal(err)
			}
			program, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			downloaded := filepath.Join(t.TempDir(), "tether-host")
			os.WriteFile(downloaded, program, 0o755)
			settings, err := launch.Read(downloaded)
			if resp.StatusCode != 200 || err != nil {
				t.Fatalf("the join page's host: %d %v", resp.StatusCode, err)
			}
			if (settings.CAPEM != "") != c.want {
				t.Errorf("the join page's host has the development CA built in: %v; the session says a host needs it: %v", settings.CAPEM != "", c.want)
			}
		})
	}
}
