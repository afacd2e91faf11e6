package server

import (
	"crypto/tls"
	"fmt"
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

	// the admin's files
	certFile, keyFile string
	// or the development CA's directory and the names to certify
	devDir   string
	devNames []string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time // of certFile when read
	checked time.Time // when the files or the expiry were last looked at
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
	return &c, nil
}

// get returns the certificate to serve, loading it again when it is due.
func (s *certSource) get() (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.cert != nil && now.Sub(s.checked) < recheck {
		return s.cert, nil
	}
	s.checked = now
	due := s.cert == nil
	if s.certFile != "" {
		if st, err := os.Stat(s.certFile); err == nil && !st.ModTime().Equal(s.modTime) {
			due, s.modTime = true, st.ModTime()
		}
	} else if s.cert != nil && s.cert.Leaf != nil && now.After(s.cert.Leaf.NotAfter.Add(-renewBefore)) {
		due = true
	}
	if !due {
		return s.cert, nil
	}
	c, err := s.load()
	if err != nil {
		if s.cert != nil {
			return s.cert, nil // keep serving the last good one: the files may be half written
		}
		return nil, err
	}
	s.cert = c
	return c, nil
}
