package server

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/tether-support/tether/certs"
)

// certSource hands the TLS server its certificate: the admin's own files,
// read again when they change (a renewal needs no restart), or one issued
// by the development CA, issued again before it expires (a broker can run
// for longer than the certificate lasts).
type certSource struct {
	now func() time.Time
	log *slog.Logger

	// the admin's files, and the name users reach the broker by, which
	// they should certify
	certFile, keyFile string
	name              string
	// or the development CA's directory and the names to certify
	devDir   string
	devNames []string

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]fileStamp // of certFile and keyFile when last read
	failing bool         // the files as they are on disk did not load
	checked time.Time    // when the files or the expiry were last looked at
	warned  time.Time    // when its coming end was last logged
}

// warnBefore is how long before the end of the admin's certificate the
// log warns, once a day, that it has not been renewed.
const warnBefore = 14 * 24 * time.Hour

// fileStamp tells whether a file changed: a renewal may replace the
// certificate and the key one after the other, in either order.
type fileStamp struct {
	modTime int64 // ns
	size    int64
}

func stampOf(path string) fileStamp {
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{st.ModTime().UnixNano(), st.Size()}
}

// recheck is how often the source looks for renewed files or a
// certificate close to its end.
const recheck = time.Minute

// renewBefore is how long before its end a development certificate is
// issued again.
const renewBefore = 30 * 24 * time.Hour

func (s *certSource) load() (*tls.Certificate, error) {
	if s.certFile == "" {
		c, _, err := certs.Dev(s.devDir, s.devNames, s.now())
		return &c, err
	}
	c, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s and key %s: %w", s.certFile, s.keyFile, err)
	}
	if c.Leaf != nil && s.now().After(c.Leaf.NotAfter) {
		return nil, fmt.Errorf("TLS certificate %s expired on %s", s.certFile, c.Leaf.NotAfter.Format(time.DateOnly))
	}
	// Served all the same (the name may reach the broker through a proxy
	// that presents its own), but browsers and hosts would refuse it.
	if c.Leaf != nil && s.name != "" {
		if err := c.Leaf.VerifyHostname(s.name); err != nil {
			s.logger().Warn("the TLS certificate does not cover the name users reach the broker by: browsers and hosts will refuse it", "certificate", s.certFile, "name", s.name, "err", err)
		}
		if s.now().Before(c.Leaf.NotBefore) {
			s.logger().Warn("the TLS certificate is not valid yet: browsers and hosts will refuse it until then", "certificate", s.certFile, "valid_from", c.Leaf.NotBefore.Format(time.RFC3339))
		}
	}
	return &c, nil
}

// expired says when the certificate served ended, if it has: the admin's
// files were not renewed (a development certificate is issued again).
func (s *certSource) expired() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert == nil || s.cert.Leaf == nil || !s.now().After(s.cert.Leaf.NotAfter) {
		return time.Time{}, false
	}
	return s.cert.Leaf.NotAfter, true
}

// reload reads the certificate again now.
func (s *certSource) reload() {
	s.mu.Lock()
	s.checked = time.Time{}
	s.stamp = [2]fileStamp{}
	s.mu.Unlock()
	if _, err := s.get(); err != nil {
		s.logger().Error("read the TLS certificate again", "err", err)
		return
	}
	s.logger().Info("TLS certificate read again (SIGHUP)")
}

// get returns the certificate to serve, loading it again when it is due.
// While the files on disk do not make a pair that loads (a renewal caught
// half written: the new certificate with the old key), the last good
// certificate is served and the files are tried again at each check.
func (s *certSource) get() (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.cert != nil && now.Sub(s.checked) < recheck {
		return s.cert, nil
	}
	s.checked = now
	due, changed := s.cert == nil, false
	if s.certFile != "" {
		stamp := [2]fileStamp{stampOf(s.certFile), stampOf(s.keyFile)}
		changed = stamp != s.stamp
		due = due || changed || s.failing
		s.stamp = stamp
	} else if s.cert != nil && s.cert.Leaf != nil && now.After(s.cert.Leaf.NotAfter.Add(-renewBefore)) {
		due = true
	}
	if s.certFile != "" && s.cert != nil && s.cert.Leaf != nil && now.After(s.cert.Leaf.NotAfter.Add(-warnBefore)) && now.Sub(s.warned) >= 24*time.Hour {
		s.warned = now
		if now.After(s.cert.Leaf.NotAfter) {
			s.logger().Error("the TLS certificate has expired and was not renewed: browsers and hosts refuse the broker", "certificate", s.certFile, "expired", s.cert.Leaf.NotAfter.Format(time.RFC3339))
		} else {
			s.logger().Warn("the TLS certificate ends soon and has not been renewed", "certificate", s.certFile, "expires", s.cert.Leaf.NotAfter.Format(time.RFC3339))
		}
	}
	if !due {
		return s.cert, nil
	}
	c, err := s.load()
	if err != nil {
		if s.cert == nil {
			return nil, err
		}
		if changed || !s.failing {
			s.logger().Warn("a new TLS certificate cannot be used yet, so the previous one is still served; it is tried again every minute", "err", err)
		}
		s.failing = true
		return s.cert, nil
	}
	s.failing = false
	if s.cert != nil && !bytes.Equal(s.cert.Certificate[0], c.Certificate[0]) && c.Leaf != nil {
		s.logger().Info("a new TLS certificate is in use", "subject", c.Leaf.Subject.String(), "expires", c.Leaf.NotAfter.Format(time.DateOnly))
	}
	s.cert = c
	return c, nil
}

func (s *certSource) logger() *slog.Logger {
	if s.log == nil {
		return slog.Default()
	}
	return s.log
}
